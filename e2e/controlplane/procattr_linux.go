package controlplane

import "syscall"

// sysProcAttr puts a child in its own process group (Stop kills the group) and has the kernel
// SIGKILL it if this process dies first, so a test binary killed by `go test -timeout` or a
// panic does not leave a scheduler, controller manager or kwok running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
