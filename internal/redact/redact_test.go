package redact

import "testing"

func TestLeaks(t *testing.T) {
	const tok = "secret-opaque-token-0123456789abcdef"
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"iss https://evil.example/" + tok, true},
		{"aud x" + tok[5:21], true},        // 16 bytes of it
		{"aud x" + tok[5:20] + "!", false}, // 15 bytes
		{"POST https://as.example/introspect: status 500", false},
		{"", false},
	} {
		if got := Leaks(tc.s, tok); got != tc.want {
			t.Errorf("Leaks(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
	if !Leaks("has short", "short") || Leaks("anything", "") {
		t.Error("short or empty token")
	}
}
