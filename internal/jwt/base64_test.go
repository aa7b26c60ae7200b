package jwt

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// decode is decodeInto a new slice, as the tests and the reference
// parser (refParse) use it; Token.Decode decodes into one shared buffer.
func decode(s string) ([]byte, error) {
	return decodeInto(make([]byte, decodedLen(len(s))), s)
}

// refDecode is what decode must agree with: encoding/base64's strict
// unpadded base64url, refusing the CR and LF it would skip.
func refDecode(s string) ([]byte, bool) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return b, err == nil
}

var base64Cases = []string{
	"", "A", "AA", "AAA", "AAAA", "AAAAA", "QQ", "QR", "QUE", "QUF", "QUFB",
	"_-_-", "-_", "eyJhbGciOiJSUzI1NiJ9", "AB+/", "AB==", "ABC=", "AA=", "A\nAA", "AA\rA",
	"AAAA\n", " AAA", "AA.A", "\x00AAA", "AAA\xff", "\xc3\xa9AA", "QUFBQUFBQUFBQUFBQUFBQUFB",
	"////", "++++", "AAAAAAA", "AAAAAAAA", "AAAAAAAAA", "AAAAAA==",
}

func checkDecode(t *testing.T, s string) {
	t.Helper()
	got, err := decode(s)
	want, ok := refDecode(s)
	if (err == nil) != ok {
		t.Fatalf("decode(%q): err %v; encoding/base64 accepts: %v", s, err, ok)
	}
	if ok && !bytes.Equal(got, want) {
		t.Fatalf("decode(%q) = %x, want %x", s, got, want)
	}
	if ok && cap(got) != len(got) {
		t.Fatalf("decode(%q): cap %d > len %d", s, cap(got), len(got))
	}
}

func TestDecodeMatchesEncodingBase64(t *testing.T) {
	for _, s := range base64Cases {
		checkDecode(t, s)
	}
	// Every 2- and 3-character tail, to cover the padding bits of each.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for _, a := range alphabet {
		for _, b := range alphabet {
			checkDecode(t, "QUFB"+string(a)+string(b))
			checkDecode(t, "QUFB"+string(a)+string(b)+"Q")
		}
	}
	// Every byte value in every position of a group.
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 4; pos++ {
			s := []byte("QUFBQUFB")
			s[4+pos] = byte(c)
			checkDecode(t, string(s))
		}
	}
}

func TestDecodeErrorNamesByte(t *testing.T) {
	_, err := decode("QUFB*UFB")
	if err == nil || err.Error() != "byte 4 is not base64url" {
		t.Fatalf("err = %v", err)
	}
}

func FuzzDecodeMatchesEncodingBase64(f *testing.F) {
	for _, s := range base64Cases {
		f.Add(s)
	}
	f.Fuzz(checkDecode)
}
