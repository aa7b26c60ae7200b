// Package demotest holds the assertions every example's test makes on the
// demo self-check, so that the four stay the same check.
package demotest

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// RunFunc is an example's run function.
type RunFunc func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int

// NoEnv is an empty environment, so a variable set where the tests run
// cannot switch an example to -discovery mode.
func NoEnv(string) string { return "" }

// Outcomes are the self-check's result lines, with runs of spaces as one.
var Outcomes = []string{
	"public GET /healthz -> 200 ok",
	"valid token GET /orders -> 200 ok",
	"no token GET /orders -> 401 ok",
	"missing scope POST /orders -> 403 ok",
	"write scope POST /orders -> 201 ok",
	"opaque token GET /orders -> 200 ok",
	"all 6 outcomes as expected",
}

// SelfCheck runs the example with no flags and no environment and fails t
// unless it exits 0 having printed every one of Outcomes. It returns the
// output.
func SelfCheck(t *testing.T, run RunFunc) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), nil, NoEnv, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(stdout.String(), "\n") {
		lines[strings.Join(strings.Fields(l), " ")] = true
	}
	for _, want := range Outcomes {
		if !lines[want] {
			t.Errorf("output lacks the line %q\n%s", want, stdout.String())
		}
	}
	return stdout.String()
}
