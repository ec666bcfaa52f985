package webhookprocess

import "syscall"

// childAttr has the kernel SIGKILL a webhook process whose test binary dies first.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
