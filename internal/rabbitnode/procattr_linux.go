package rabbitnode

import "syscall"

// procAttr puts the node in its own process group, and has the kernel send its start script
// SIGTERM (an orderly stop) should the test binary die without cleaning up, for example on a
// go test -timeout panic, so that no node outlives its test.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
