//go:build !linux

package webhookproc

import "syscall"

func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
