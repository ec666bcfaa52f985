//go:build !linux

package e2e

import (
	"syscall"
	"testing"
)

func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }

// listeningSockets needs Linux's /proc socket tables.
func listeningSockets(*testing.T, int) (tcp, other []string, ok bool) { return nil, nil, false }
