package controlplane

import "syscall"

// sysProcAttr puts a child in its own process group (Stop kills the group) and has the kernel
// SIGKILL it if its parent dies first, so a test binary killed by `go test -timeout` or a panic
// does not leave a scheduler, controller manager or kwok running. (Strictly the signal fires when
// the forking OS thread exits; Go only retires threads of goroutines that die while locked to
// them, which Start's goroutines never are. The watchdog covers the rest.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
