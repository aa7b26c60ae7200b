package dpop

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzVerify: no input panics; every refusal is of exactly one category
// (and never ErrOptions: the options are valid); and whatever is
// accepted, encoding/json reads as a proof for the request: typ, htm,
// htu, ath, jti and iat as the options ask.
func FuzzVerify(f *testing.F) {
	for _, alg := range []string{"RS256", "PS256", "ES256", "ES384", "EdDSA"} {
		s := newSpec(f, alg)
		valid := s.mint(f)
		f.Add(valid)
		dot := strings.IndexByte(valid, '.')
		last := strings.LastIndexByte(valid, '.')
		f.Add(valid[:dot] + "X" + valid[dot+1:])              // the header cut
		f.Add(valid[:last] + ".AAAA")                         // a bad signature
		f.Add(valid[:last])                                   // two parts
		f.Add(valid + "." + valid[last+1:])                   // four parts
		f.Add(valid[:dot+5] + strings.ToUpper(valid[dot+5:])) // the payload changed
		s.claims["nonce"] = "server-nonce"
		f.Add(s.mint(f))
		s.header["typ"] = "JWT"
		f.Add(s.mint(f))
		s.header["typ"] = "dpop+jwt"
		s.jwk()["d"] = "AQAB"
		f.Add(s.mint(f))
		delete(s.jwk(), "d")
		s.editClaims = prepend(`"HTM":"GET"`)
		f.Add(s.mint(f))
	}
	s := newSpec(f, "ES256")
	s.header["alg"] = "none"
	f.Add(s.mint(f))
	f.Add("")
	f.Add("eyJ.eyJ.AA")

	opts := testOptions()
	withNonce := testOptions()
	withNonce.Nonce = func(n string) bool { return n == "server-nonce" }
	f.Fuzz(func(t *testing.T, proof string) {
		for _, o := range []Options{opts, withNonce} {
			p, err := Verify(proof, o)
			if err != nil {
				if p != nil {
					t.Fatalf("a Proof with the error %v", err)
				}
				if !oneOf(err) || errors.Is(err, ErrOptions) || Code(err) == "" {
					t.Fatalf("error %v: not exactly one of invalid_dpop_proof, use_dpop_nonce", err)
				}
				if errors.Is(err, ErrUseNonce) && o.Nonce == nil {
					t.Fatalf("use_dpop_nonce without Options.Nonce: %v", err)
				}
				continue
			}
			checkAccepted(t, proof, o, p)
		}
	})
}

// checkAccepted reads an accepted proof with encoding/json and checks it
// is what Verify said it is.
func checkAccepted(t *testing.T, proof string, o Options, p *Proof) {
	t.Helper()
	parts := strings.Split(proof, ".")
	if len(parts) != 3 || len(proof) > MaxProofSize {
		t.Fatalf("accepted a proof of %d parts, %d bytes", len(parts), len(proof))
	}
	var h struct {
		Typ, Alg string
		JWK      map[string]any
	}
	var c struct {
		JTI, HTM, HTU, ATH, Nonce string
		IAT                       float64
	}
	for i, v := range []any{&h, &c} {
		b, err := b64.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("accepted part %d that is not base64url: %v", i, err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("accepted part %d that encoding/json refuses: %v", i, err)
		}
	}
	if !strings.EqualFold(strings.TrimPrefix(strings.ToLower(h.Typ), "application/"), "dpop+jwt") {
		t.Fatalf("accepted typ %q", h.Typ)
	}
	if h.Alg != p.Algorithm || h.JWK == nil {
		t.Fatalf("accepted alg %q (Proof says %q), jwk %v", h.Alg, p.Algorithm, h.JWK)
	}
	for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
		if _, ok := h.JWK[m]; ok {
			t.Fatalf("accepted a jwk with %q", m)
		}
	}
	if c.HTM != o.Method {
		t.Fatalf("accepted htm %q", c.HTM)
	}
	if n, err := normalizeHTU(c.HTU); err != nil || n != testURL {
		t.Fatalf("accepted htu %q (%q, %v)", c.HTU, n, err)
	}
	if c.ATH != athOf(o.AccessToken) {
		t.Fatalf("accepted ath %q", c.ATH)
	}
	if c.JTI == "" || c.JTI != p.ID || len(p.ID) > MaxIDSize {
		t.Fatalf("accepted jti %q (Proof says %q)", c.JTI, p.ID)
	}
	iat := time.Unix(0, int64(c.IAT*1e9))
	if iat.Before(testNow.Add(-DefaultWindow-time.Second)) || iat.After(testNow.Add(DefaultSkew+time.Second)) || p.IssuedAt.Sub(iat).Abs() > time.Millisecond {
		t.Fatalf("accepted iat %v (Proof says %v)", iat, p.IssuedAt)
	}
	if o.Nonce != nil && (c.Nonce != "server-nonce" || p.Nonce != c.Nonce) {
		t.Fatalf("accepted nonce %q (Proof says %q)", c.Nonce, p.Nonce)
	}
	if len(p.Thumbprint) != 43 {
		t.Fatalf("thumbprint %q", p.Thumbprint)
	}
}
