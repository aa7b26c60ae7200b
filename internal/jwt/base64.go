package jwt

import (
	"encoding/base64"
	"fmt"
)

// A base64url decoder (RFC 4648 §5, without padding, as RFC 7515 §2
// requires) that checks the alphabet and decodes in one pass. It accepts
// exactly what base64.RawURLEncoding.Strict() accepts once CR and LF, which
// encoding/base64 skips even in strict mode, are refused too: every input
// has one spelling. base64_test.go holds it to encoding/base64.

// invalid marks a byte outside the alphabet in b64Values; it has bits
// above the low six, which no value has.
const invalid = 0xFF

// b64Values maps each byte to its 6-bit value, or to invalid.
var b64Values = func() (t [256]byte) {
	for i := range t {
		t[i] = invalid
	}
	for i, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = byte(i)
	}
	return t
}()

// decodedLen is the length of the decoding of n characters.
func decodedLen(n int) int { return base64.RawURLEncoding.DecodedLen(n) }

// decodeInto decodes s into dst, which has room for decodedLen(len(s))
// bytes, and returns the decoded part of dst, capped at its length.
func decodeInto(dst []byte, s string) ([]byte, error) {
	if len(s)%4 == 1 {
		// One character holds six bits: not a whole byte.
		return nil, fmt.Errorf("illegal base64url length %d", len(s))
	}
	n := decodedLen(len(s))
	out := dst[:n:n]
	j := 0
	i := 0
	for ; i+4 <= len(s); i += 4 {
		a, b, c, d := b64Values[s[i]], b64Values[s[i+1]], b64Values[s[i+2]], b64Values[s[i+3]]
		if (a|b|c|d)&0xC0 != 0 {
			return nil, notBase64(s, i)
		}
		v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(d)
		out[j], out[j+1], out[j+2] = byte(v>>16), byte(v>>8), byte(v)
		j += 3
	}
	switch len(s) - i {
	case 2:
		a, b := b64Values[s[i]], b64Values[s[i+1]]
		if (a|b)&0xC0 != 0 {
			return nil, notBase64(s, i)
		}
		if b&0x0F != 0 {
			// Strict: the bits past the last byte must be zero, or one
			// byte string would have several encodings.
			return nil, fmt.Errorf("non-zero padding bits at byte %d", i+1)
		}
		out[j] = a<<2 | b>>4
	case 3:
		a, b, c := b64Values[s[i]], b64Values[s[i+1]], b64Values[s[i+2]]
		if (a|b|c)&0xC0 != 0 {
			return nil, notBase64(s, i)
		}
		if c&0x03 != 0 {
			return nil, fmt.Errorf("non-zero padding bits at byte %d", i+2)
		}
		out[j], out[j+1] = a<<2|b>>4, b<<4|c>>2
	}
	return out, nil
}

// notBase64 names the first byte at or after i that is not base64url.
func notBase64(s string, i int) error {
	for ; i < len(s); i++ {
		if b64Values[s[i]] == invalid {
			break
		}
	}
	return fmt.Errorf("byte %d is not base64url", i)
}
