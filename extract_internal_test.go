package tokenguard

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// refB64Token is RFC 6750 §2.1 b64token, one byte at a time:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func refB64Token(s string) bool {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
	i := 0
	for i < len(s) && strings.IndexByte(chars, s[i]) >= 0 {
		i++
	}
	if i == 0 {
		return false
	}
	return strings.Trim(s[i:], "=") == ""
}

// isB64Token reads eight bytes at a time: it must agree with the byte-wise
// definition at every length around the group boundaries (every string
// over a small alphabet up to 11 bytes) and on random longer strings.
func TestIsB64TokenMatchesDefinition(t *testing.T) {
	alphabet := []byte{'a', '=', '!'}
	buf := make([]byte, 0, 11)
	var walk func()
	walk = func() {
		s := string(buf)
		if got, want := isB64Token(s), refB64Token(s); got != want {
			t.Fatalf("isB64Token(%q) = %v, want %v", s, got, want)
		}
		if len(buf) == cap(buf) {
			return
		}
		for _, c := range alphabet {
			buf = append(buf, c)
			walk()
			buf = buf[:len(buf)-1]
		}
	}
	walk()

	rng := rand.New(rand.NewPCG(1, 2))
	pick := []byte("aZ09-._~+/==\x00 !\"\\,;\x7f\x80\xff")
	for range 200000 {
		b := make([]byte, rng.IntN(70))
		for i := range b {
			if rng.IntN(20) == 0 {
				b[i] = pick[rng.IntN(len(pick))]
			} else {
				b[i] = 'a'
			}
		}
		// Often: a valid run, then padding, then maybe one bad byte.
		if rng.IntN(2) == 0 && len(b) > 0 {
			k := rng.IntN(len(b))
			for i := k; i < len(b); i++ {
				b[i] = '='
			}
			if rng.IntN(2) == 0 {
				b[k+rng.IntN(len(b)-k)] = pick[rng.IntN(len(pick))]
			}
		}
		s := string(b)
		if got, want := isB64Token(s), refB64Token(s); got != want {
			t.Fatalf("isB64Token(%q) = %v, want %v", s, got, want)
		}
	}
}
