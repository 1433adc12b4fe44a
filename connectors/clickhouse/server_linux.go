package clickhouse

import "syscall"

// sysProcAttr puts the server in its own process group, so a Ctrl-C meant for
// Sluice reaches it only through Stop, and has Linux stop it (SIGTERM) should
// this process die without stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
