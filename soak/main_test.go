package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestShortSoak is a few seconds of the soak with fewer clients and
// shorter phases: every decision must be right, every fault phase must
// end with the Guard whole again, and Close must leave no goroutine behind.
func TestShortSoak(t *testing.T) {
	o := defaultOptions()
	o.Duration = 4 * time.Second
	o.Clients = 8
	o.Phase = 300 * time.Millisecond
	o.RotateEvery = 300 * time.Millisecond
	o.FetchTimeout = time.Second
	o.OpaquePool = 1000
	rep, err := run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.print(&b)
	t.Log("\n" + b.String())

	if rep.WrongAccepts != 0 || rep.WrongRejects != 0 || rep.WrongPrincipals != 0 || rep.Unexpected != 0 {
		t.Errorf("wrong decisions: %d accepts, %d rejects (%d late 503s), %d principals, %d unexpected statuses",
			rep.WrongAccepts, rep.WrongRejects, rep.Late503, rep.WrongPrincipals, rep.Unexpected)
	}
	if len(rep.Unrecovered) > 0 {
		t.Errorf("no recovery after %v", rep.Unrecovered)
	}
	if rep.Refused != 0 || rep.LogLeaks != 0 {
		t.Errorf("%d upstream calls to another host, %d log records with a JWT", rep.Refused, rep.LogLeaks)
	}
	if rep.Goroutines.AfterClose > rep.Goroutines.Baseline {
		t.Errorf("goroutines: %d after Close, %d before", rep.Goroutines.AfterClose, rep.Goroutines.Baseline)
	}
	// The run must have exercised what it claims to.
	if rep.Requests < 200 {
		t.Errorf("only %d requests", rep.Requests)
	}
	faults := 0
	for _, p := range rep.Phases {
		if p.Fault {
			faults += p.Count
		}
	}
	if faults < 2 {
		t.Errorf("only %d fault phases ran", faults)
	}
	if rep.Rotations == 0 {
		t.Error("no key was rotated")
	}
}
