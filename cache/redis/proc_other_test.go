//go:build !linux

package tgredis_test

import "os/exec"

func setDeathSignal(*exec.Cmd) {}
