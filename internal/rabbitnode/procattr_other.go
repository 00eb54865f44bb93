//go:build !linux

package rabbitnode

import "syscall"

// procAttr puts the node in its own process group.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
