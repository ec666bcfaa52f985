//go:build !linux

package install

import "syscall"

// childAttr: without Pdeathsig, a webhook process outlives a test binary that dies first.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
