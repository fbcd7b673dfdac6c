package distributed

import "syscall"

// procAttr puts a launched process in a group of its own when Launch
// forwards signals to it, and asks the kernel to send it SIGTERM when
// the thread that started it dies (Launch's process, in practice: Go
// keeps its threads).
func procAttr(ownGroup bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: ownGroup, Pdeathsig: syscall.SIGTERM}
}
