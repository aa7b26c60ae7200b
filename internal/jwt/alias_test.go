package jwt

import "testing"

// The claim strings must not alias the decoding buffer (Token.Payload),
// which a caller may reuse or write: they are substrings of PayloadText.
// Writing over the buffer must leave every string read unchanged.
func TestClaimStringsDoNotAliasTheBuffer(t *testing.T) {
	tk, err := Parse(benchToken())
	if err != nil {
		t.Fatal(err)
	}
	before := tk.Claims
	kid := tk.Header.Kid
	for i := range tk.Payload {
		tk.Payload[i] = 'x'
	}
	for i := range tk.Signature {
		tk.Signature[i] = 'x'
	}
	c := tk.Claims
	if c.Issuer != before.Issuer || c.Subject != "user-1" || c.ClientID != "client-1" || c.ID != before.ID ||
		c.Audience[0] != "http://127.0.0.1:41234/" || c.Scope[1] != "orders:write" || kid != "Zq3x9kLmN0pQrStUvWxYzA" {
		t.Errorf("claims changed with the buffer: %+v, kid %q", c, kid)
	}
	if tk.PayloadText[0] != '{' {
		t.Errorf("PayloadText aliases the buffer: %q", tk.PayloadText[:8])
	}
}
