package jwt

import (
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
)

// RFC 6749 §3.3: scope = scope-token *( SP scope-token ). Only SP separates;
// any other white space stays inside a (then unmatchable) scope-token, so a
// single scope the server issued can never turn into a second, privileged one.
func TestAttackScopeSeparatorIsSPOnly(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	for _, tc := range []struct {
		scope string
		want  []string
	}{
		{"read admin", []string{"read", "admin"}},
		{"  read   admin ", []string{"read", "admin"}},
		{"repo:x\u00a0admin", []string{"repo:x\u00a0admin"}},
		{"repo:x\u0085admin", []string{"repo:x\u0085admin"}},
		{"repo:x\u2003admin", []string{"repo:x\u2003admin"}},
		{"repo:x\tadmin", []string{"repo:x\tadmin"}},
		{"repo:x\r\nadmin", []string{"repo:x\r\nadmin"}},
	} {
		for _, member := range []string{"scope", "scp"} {
			payload := `{"` + member + `":` + quoteJSON(tc.scope) + `}`
			tok, err := Parse(enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(payload)) + ".c2ln")
			if err != nil {
				t.Fatalf("%s %q: %v", member, tc.scope, err)
			}
			got := tok.Claims.Scope
			if member == "scp" {
				got = tok.Claims.Scp
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s %q = %q, want %q", member, tc.scope, got, tc.want)
			}
		}
	}
}

func quoteJSON(s string) string {
	b := []byte{'"'}
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20:
			b = append(b, []byte("\\u00")...)
			b = append(b, "0123456789abcdef"[r>>4], "0123456789abcdef"[r&15])
		default:
			b = append(b, string(r)...)
		}
	}
	return string(append(b, '"'))
}

// Payload and Signature share one buffer with the header, and every
// string Parse reads is a view of it. Each part must be capped at its
// length, so a caller that appends to one reallocates instead of writing
// over the next part or the strings read from it.
func TestAttackPartsOfTheBufferAreCapped(t *testing.T) {
	tk, err := Parse(tok(okHeader, okClaims))
	if err != nil {
		t.Fatal(err)
	}
	if cap(tk.Payload) != len(tk.Payload) || cap(tk.Signature) != len(tk.Signature) {
		t.Fatalf("payload len %d cap %d, signature len %d cap %d", len(tk.Payload), cap(tk.Payload), len(tk.Signature), cap(tk.Signature))
	}
	before := *tk
	payload, sig := string(tk.Payload), string(tk.Signature)
	_ = append(tk.Payload, strings.Repeat("X", 64)...)
	_ = append(tk.Signature, strings.Repeat("Y", 64)...)
	_ = append(tk.Claims.Audience, "evil")
	_ = append(tk.Claims.Scope, "admin")
	if string(tk.Payload) != payload || string(tk.Signature) != sig || !reflect.DeepEqual(*tk, before) {
		t.Fatalf("appending to one part changed the token: %+v", *tk)
	}
	if tk.Header.Kid != "k1" || tk.Claims.Subject != "alice" || tk.Claims.Issuer != "https://as.example" ||
		strings.Join(tk.Claims.Scope, " ") != "read write" || strings.Join(tk.Claims.Audience, " ") != "https://rs.example" {
		t.Fatalf("strings changed: %+v", tk)
	}
}
