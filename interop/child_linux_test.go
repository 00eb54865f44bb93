package interop

import (
	"os/exec"
	"syscall"
)

// setChildAttrs makes the kernel kill the broker when the test binary dies without running
// TestMain's cleanup (go test's -timeout panic, a SIGKILL), so that no broker is left behind
// holding its port. (Pdeathsig follows the thread that started the child; the Go runtime does not
// end its threads while no goroutine is locked to one, and these tests lock none.)
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
