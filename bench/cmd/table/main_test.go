package main

import (
	"math"
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/tokenguard/tokenguard/bench
cpu: Test CPU
BenchmarkVerify/floor/RS256-2         	   100	     30000 ns/op	    1376 B/op	       9 allocs/op
BenchmarkVerify/floor/RS256-2         	   100	     32000 ns/op	    1376 B/op	       9 allocs/op
BenchmarkVerify/floor/RS256-2         	   100	     90000 ns/op	    1376 B/op	       9 allocs/op
BenchmarkVerify/harness/RS256-2       	   100	      5000 ns/op	    6000 B/op	      16 allocs/op
BenchmarkVerify/harness/RS256-2       	   100	      5000 ns/op	    6000 B/op	      16 allocs/op
BenchmarkVerify/harness/RS256-2       	   100	      5000 ns/op	    6000 B/op	      16 allocs/op
BenchmarkVerify/lib/RS256-2           	   100	     40000 ns/op	   10000 B/op	      50 allocs/op
BenchmarkVerify/lib/RS256-2           	   100	     41000 ns/op	   10000 B/op	      50 allocs/op
BenchmarkVerify/lib/RS256-2           	   100	     39000 ns/op	   10000 B/op	      52 allocs/op
BenchmarkVerifyParallel/lib/RS256-2   	   100	     20500 ns/op	   10000 B/op	      50 allocs/op
BenchmarkVerifyParallel/lib/RS256-2   	   100	     20500 ns/op	   10000 B/op	      50 allocs/op
BenchmarkOverhead/lib/RS256-2         	   100	     80000 ns/op	      2500 beyond-ns/op	   33000 floor-ns/op	    4500 harness-ns/op	   40000 lib-ns/op	   16000 B/op	      70 allocs/op
BenchmarkOverhead/lib/RS256-2         	   100	     80000 ns/op	      2700 beyond-ns/op	   33000 floor-ns/op	    4500 harness-ns/op	   40000 lib-ns/op	   16000 B/op	      70 allocs/op
BenchmarkOverhead/lib/RS256-2         	   100	     80000 ns/op	      9000 beyond-ns/op	   33000 floor-ns/op	    4500 harness-ns/op	   40000 lib-ns/op	   16000 B/op	      70 allocs/op
--- FAIL: not a result line
PASS
ok  	github.com/tokenguard/tokenguard/bench	1.0s
`

func TestBuild(t *testing.T) {
	rs, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	tb := Build(rs, "BenchmarkVerify", "BenchmarkVerifyParallel", "floor", "harness")
	if len(tb.Rows) != 3 || tb.Runs != 2 {
		t.Fatalf("%d rows, %d runs: %+v", len(tb.Rows), tb.Runs, tb.Rows)
	}
	lib := tb.Rows[2]
	if lib.Lib != "lib" || lib.NsOp != 40000 || lib.AllocsOp != 50 {
		t.Fatalf("lib row: %+v", lib)
	}
	// Medians: floor 32000, harness 5000.
	if lib.BeyondFloorHarness != 3000 || lib.BeyondHarness != 35000 || lib.XFloor != 1.25 || lib.ParallelRatio != 20500.0/40000 {
		t.Fatalf("lib row: %+v", lib)
	}
	if !math.IsNaN(tb.Rows[0].BeyondFloorHarness) || tb.Rows[0].XFloor != 1 || !math.IsNaN(tb.Rows[1].XFloor) {
		t.Fatalf("reference rows: %+v", tb.Rows[:2])
	}
	md := tb.Markdown()
	for _, want := range []string{"Medians of 2 runs", "| RS256 | lib | 40.0 | 10000 | 50 | 3.00 | 35.0 | 1.25× | 20.5 | 0.51× |", "| RS256 | harness | 5.00 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "paired") {
		t.Errorf("a paired column without AddPaired:\n%s", md)
	}
	tb.AddPaired(rs, "BenchmarkOverhead")
	if lib := tb.Rows[2]; lib.PairedBeyond != 2700 || !math.IsNaN(tb.Rows[0].PairedBeyond) {
		t.Fatalf("paired: %+v", tb.Rows)
	}
	md = tb.Markdown()
	for _, want := range []string{"| beyond floor + harness | beyond, paired | beyond harness |", "| RS256 | lib | 40.0 | 10000 | 50 | 3.00 | 2.70 | 35.0 | 1.25× | 20.5 | 0.51× |", "| RS256 | floor | 32.0 | 1376 | 9 | — | — | — | 1.00× |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestMedianEven(t *testing.T) {
	rs := &Results{Samples: map[string]map[string][]float64{"x": {"ns/op": {4, 1, 3, 2}}}}
	if m, _ := rs.Median("x", "ns/op"); m != 2.5 {
		t.Fatal(m)
	}
	if trimProcs("BenchmarkX/a-b/c-16") != "BenchmarkX/a-b/c" || trimProcs("BenchmarkX/a-b") != "BenchmarkX/a-b" {
		t.Fatal("trimProcs")
	}
}
