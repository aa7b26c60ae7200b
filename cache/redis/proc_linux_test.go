package tgredis_test

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill a redis-server the tests started if
// the test binary dies without stopping it.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
