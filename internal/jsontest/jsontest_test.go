package jsontest

import "testing"

func TestFoldedDuplicate(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want bool
	}{
		{`{"a":1,"A":2}`, true},
		{`{"a":1,"a":2}`, true},
		{`{"workspace":1,"work\u017fpace":2}`, true},
		{`{"x":[{"k":1},{"k":2}]}`, false},
		{`{"x":{"k":1,"K":2}}`, true},
		{`{"a":{"b":1},"b":2}`, false},
		{`[{"a":1},{"A":1}]`, false},
		{`{"a":`, false},
	} {
		if got := FoldedDuplicate([]byte(tc.doc)); got != tc.want {
			t.Errorf("FoldedDuplicate(%s) = %v, want %v", tc.doc, got, tc.want)
		}
	}
	if ms, ok := Members([]byte(`{"a":1,"a":[2]} `)); !ok || len(ms) != 2 || ms[1].Name != "a" || string(ms[1].Raw) != "[2]" {
		t.Errorf("Members: %v %v", ms, ok)
	}
	if _, ok := Members([]byte(`{"a":1}}`)); ok {
		t.Error("Members accepted trailing data")
	}
}
