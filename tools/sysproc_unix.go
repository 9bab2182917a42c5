//go:build unix && !linux

package tools

import "syscall"

// sysProcAttr puts bash in its own process group, so the whole group can be
// killed (Pdeathsig exists only on Linux).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
