//go:build unix && !linux

package clickhouse

import "syscall"

// sysProcAttr puts the server in its own process group, so a Ctrl-C meant for
// Sluice reaches it only through Stop.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
