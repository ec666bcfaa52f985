//go:build !linux

package webhookprocess

import "syscall"

func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
