//go:build unix

package private

import "syscall"

// RestrictUmask sets the process umask to 0077, so that every file and directory the process
// creates from now on is private to its user, also those made by code that passes 0644 or 0755.
// The umask is the process's, not a goroutine's: call it at the start of a command, before any
// file is made.
func RestrictUmask() { syscall.Umask(0o077) }
