//go:build !linux

package interop

import "os/exec"

// setChildAttrs: outside Linux there is no parent-death signal; TestMain stops the broker.
func setChildAttrs(*exec.Cmd) {}
