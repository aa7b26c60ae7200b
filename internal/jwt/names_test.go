package jwt

import (
	"bytes"
	"testing"
)

// foldKey must agree with bytes.EqualFold, which the pairwise path uses.
func FuzzFoldKeyMatchesEqualFold(f *testing.F) {
	for _, p := range [][2]string{
		{"workspace", "workſpace"}, {"kid", "\u212aID"}, {"ISS", "iss"}, {"ß", "ss"}, {"\xff", "\xfe"},
		{"\xff", "\ufffd"}, {"Σ", "ς"}, {"ǅ", "ǆ"}, {"a", "b"}, {"", ""}, {"ϴ", "θ"},
	} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		keysEqual := bytes.Equal(foldKey(nil, []byte(a)), foldKey(nil, []byte(b)))
		if keysEqual != bytes.EqualFold([]byte(a), []byte(b)) {
			t.Fatalf("foldKey equal = %v, bytes.EqualFold = %v for %q, %q", keysEqual, !keysEqual, a, b)
		}
		var m memberNames
		m.b = []byte(a + b)
		x := nameSpan{start: 0, end: int32(len(a)), ascii: isASCII([]byte(a))}
		y := nameSpan{start: int32(len(a)), end: int32(len(a) + len(b)), ascii: isASCII([]byte(b))}
		if got := m.equalFold(x, y); got != bytes.EqualFold([]byte(a), []byte(b)) {
			t.Fatalf("equalFold = %v for %q, %q", got, a, b)
		}
	})
}
