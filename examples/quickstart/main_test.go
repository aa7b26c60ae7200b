package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestQuickstartOutcomes(t *testing.T) {
	var out bytes.Buffer
	if code := run(&out); code != 0 {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	for _, want := range []string{"valid token", "-> 200", "-> 401", "-> 403", "all 7 outcomes as expected"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q\n%s", want, out.String())
		}
	}
}
