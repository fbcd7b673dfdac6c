//go:build !linux

package distributed

import "syscall"

// procAttr puts a launched process in a group of its own when Launch
// forwards signals to it.
func procAttr(ownGroup bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: ownGroup}
}
