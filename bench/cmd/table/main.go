// Command table turns the output of `go test -bench 'BenchmarkVerify'
// -benchmem` (any -count) into one markdown table: per algorithm and
// library, the median time, B/op and allocs/op; the cost beyond the floor
// and the harness (lib − floor − harness), beyond the harness alone
// (lib − harness), the ratio to the floor (lib ÷ floor), and the parallel
// median with its ratio to the serial one. When the input also has
// <paired>/<lib>/<alg> results with a beyond-ns/op metric (BenchmarkOverhead,
// which times floor, lib and harness back to back in each iteration), their
// median is one more column: the same cost, measured in one benchmark
// rather than subtracted across three.
//
// Benchmarks are named <serial>/<lib>/<alg> and <parallel>/<lib>/<alg>;
// the libraries named by -floor and -harness are the reference rows.
//
// Usage:
//
//	go run ./cmd/table [-serial BenchmarkVerify] [-parallel BenchmarkVerifyParallel] [-paired BenchmarkOverhead] [file ...]
//
// With no file, it reads standard input.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	serial := flag.String("serial", "BenchmarkVerify", "name of the serial benchmark")
	parallel := flag.String("parallel", "BenchmarkVerifyParallel", "name of the parallel benchmark")
	floor := flag.String("floor", "floor", "library name of the bare signature check")
	harness := flag.String("harness", "harness", "library name of the harness alone")
	paired := flag.String("paired", "BenchmarkOverhead", "name of the benchmark reporting beyond-ns/op")
	flag.Parse()

	var in []io.Reader
	for _, name := range flag.Args() {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		in = append(in, f)
	}
	if len(in) == 0 {
		in = append(in, os.Stdin)
	}
	rs, err := Parse(io.MultiReader(in...))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	t := Build(rs, *serial, *parallel, *floor, *harness)
	t.AddPaired(rs, *paired)
	if len(t.Rows) == 0 {
		fmt.Fprintf(os.Stderr, "table: no %s/<lib>/<alg> results in the input\n", *serial)
		os.Exit(1)
	}
	fmt.Print(t.Markdown())
}

// Results holds every sample of every benchmark, by name without the
// -GOMAXPROCS suffix, then by unit ("ns/op", "B/op", "allocs/op", ...).
type Results struct {
	Samples map[string]map[string][]float64
	Order   []string // names in order of first appearance
}

// Parse reads `go test -bench` output; lines that are not results are
// skipped.
func Parse(r io.Reader) (*Results, error) {
	rs := &Results{Samples: map[string]map[string][]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// Name, iterations, then value-unit pairs.
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		name := trimProcs(f[0])
		units, seen := rs.Samples[name]
		if !seen {
			units = map[string][]float64{}
			rs.Samples[name] = units
			rs.Order = append(rs.Order, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			units[f[i+1]] = append(units[f[i+1]], v)
		}
	}
	return rs, sc.Err()
}

// trimProcs drops the -N that go test appends for GOMAXPROCS.
func trimProcs(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name
	}
	if _, err := strconv.Atoi(name[i+1:]); err != nil {
		return name
	}
	return name[:i]
}

// Median returns the median of name's samples in unit, and whether there
// were any.
func (rs *Results) Median(name, unit string) (float64, bool) {
	v := slices.Clone(rs.Samples[name][unit])
	if len(v) == 0 {
		return 0, false
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2], true
	}
	return (v[n/2-1] + v[n/2]) / 2, true
}

// Row is one library at one algorithm. Missing values are NaN.
type Row struct {
	Alg, Lib                          string
	NsOp, BOp, AllocsOp               float64
	BeyondFloorHarness, BeyondHarness float64
	XFloor                            float64
	ParallelNsOp, ParallelRatio       float64
	// PairedBeyond is the median beyond-ns/op of the paired benchmark.
	PairedBeyond float64
}

// Table is the whole report.
type Table struct {
	Rows    []Row
	Runs    int // fewest samples behind any median
	Floor   string
	Harness string
	Paired  bool // some row has PairedBeyond
}

// Build computes the rows from the medians.
func Build(rs *Results, serial, parallel, floor, harness string) *Table {
	var algs, libs []string
	for _, name := range rs.Order {
		lib, alg, ok := split(name, serial)
		if !ok {
			continue
		}
		if !slices.Contains(algs, alg) {
			algs = append(algs, alg)
		}
		if !slices.Contains(libs, lib) {
			libs = append(libs, lib)
		}
	}
	// The reference rows first, the rest as they came.
	libs = slices.DeleteFunc(libs, func(l string) bool { return l == floor || l == harness })
	libs = append([]string{floor, harness}, libs...)

	t := &Table{Runs: math.MaxInt, Floor: floor, Harness: harness}
	med := func(name, unit string) float64 {
		v, ok := rs.Median(name, unit)
		if !ok {
			return math.NaN()
		}
		if n := len(rs.Samples[name][unit]); n < t.Runs {
			t.Runs = n
		}
		return v
	}
	for _, alg := range algs {
		fl := med(serial+"/"+floor+"/"+alg, "ns/op")
		ha := med(serial+"/"+harness+"/"+alg, "ns/op")
		for _, lib := range libs {
			name := serial + "/" + lib + "/" + alg
			if _, ok := rs.Samples[name]; !ok {
				continue
			}
			r := Row{Alg: alg, Lib: lib, BeyondFloorHarness: math.NaN(), BeyondHarness: math.NaN(), XFloor: math.NaN(),
				ParallelNsOp: math.NaN(), ParallelRatio: math.NaN(), PairedBeyond: math.NaN()}
			r.NsOp, r.BOp, r.AllocsOp = med(name, "ns/op"), med(name, "B/op"), med(name, "allocs/op")
			if lib != floor && lib != harness {
				r.BeyondFloorHarness = r.NsOp - fl - ha
				r.BeyondHarness = r.NsOp - ha
			}
			if lib != harness {
				r.XFloor = r.NsOp / fl
			}
			if _, ok := rs.Samples[parallel+"/"+lib+"/"+alg]; ok {
				r.ParallelNsOp = med(parallel+"/"+lib+"/"+alg, "ns/op")
				r.ParallelRatio = r.ParallelNsOp / r.NsOp
			}
			t.Rows = append(t.Rows, r)
		}
	}
	if t.Runs == math.MaxInt {
		t.Runs = 0
	}
	return t
}

// AddPaired fills PairedBeyond from paired/<lib>/<alg>'s beyond-ns/op.
func (t *Table) AddPaired(rs *Results, paired string) {
	for i := range t.Rows {
		r := &t.Rows[i]
		if v, ok := rs.Median(paired+"/"+r.Lib+"/"+r.Alg, "beyond-ns/op"); ok {
			r.PairedBeyond = v
			t.Paired = true
		}
	}
}

// split parses <bench>/<lib>/<alg>.
func split(name, bench string) (lib, alg string, ok bool) {
	rest, ok := strings.CutPrefix(name, bench+"/")
	if !ok {
		return "", "", false
	}
	lib, alg, ok = strings.Cut(rest, "/")
	if !ok || lib == "" || alg == "" || strings.Contains(alg, "/") {
		return "", "", false
	}
	return lib, alg, true
}

// Markdown renders the table.
func (t *Table) Markdown() string {
	var b strings.Builder
	runs := fmt.Sprintf("Medians of %d runs", t.Runs)
	if t.Runs == 1 {
		runs = "One run"
	}
	fmt.Fprintf(&b, "%s. time/op in µs; beyond = lib − %s − %s (serial); × floor = lib ÷ %s; par ÷ ser = parallel time/op ÷ serial time/op.",
		runs, t.Floor, t.Harness, t.Floor)
	if t.Paired {
		b.WriteString(" paired = the same beyond, timed back to back in each iteration (BenchmarkOverhead).")
	}
	b.WriteString("\n\n| alg | library | time/op | B/op | allocs/op | beyond floor + harness |")
	if t.Paired {
		b.WriteString(" beyond, paired |")
	}
	b.WriteString(" beyond harness | × floor | parallel time/op | par ÷ ser |\n|---|---|---:|---:|---:|---:|")
	if t.Paired {
		b.WriteString("---:|")
	}
	b.WriteString("---:|---:|---:|---:|\n")
	for _, r := range t.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |", r.Alg, r.Lib, micros(r.NsOp), count(r.BOp), count(r.AllocsOp), micros(r.BeyondFloorHarness))
		if t.Paired {
			fmt.Fprintf(&b, " %s |", micros(r.PairedBeyond))
		}
		fmt.Fprintf(&b, " %s | %s | %s | %s |\n", micros(r.BeyondHarness), ratio(r.XFloor), micros(r.ParallelNsOp), ratio(r.ParallelRatio))
	}
	return b.String()
}

func micros(ns float64) string {
	if math.IsNaN(ns) {
		return "—"
	}
	us := ns / 1000
	if math.Abs(us) >= 10 {
		return strconv.FormatFloat(us, 'f', 1, 64)
	}
	return strconv.FormatFloat(us, 'f', 2, 64)
}

func count(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func ratio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "×"
}
