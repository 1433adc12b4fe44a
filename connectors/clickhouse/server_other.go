//go:build !unix

package clickhouse

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
