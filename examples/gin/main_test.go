package main

import (
	"testing"

	"github.com/tokenguard/tokenguard/examples/internal/demo/demotest"
)

func TestSelfCheck(t *testing.T) {
	demotest.SelfCheck(t, run)
}
