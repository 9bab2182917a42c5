package tools

import "syscall"

// sysProcAttr puts bash in its own process group, so the whole group can be
// killed, and kills bash if the worker thread that started it dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
