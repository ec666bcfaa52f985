//go:build !linux

package controlplane

import "syscall"

// sysProcAttr puts a child in its own process group so Stop can kill the group. (No parent-death
// signal outside Linux: a crashed test binary may leave children behind there.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
