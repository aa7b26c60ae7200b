package oauthtest_test

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard/oauthtest"
)

var fixedNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestMintDefaults(t *testing.T) {
	srv := newServer(t, oauthtest.Options{
		Algorithms:    []string{"ES256"},
		TokenLifetime: 10 * time.Minute,
		Now:           func() time.Time { return fixedNow },
	})
	tok := srv.Mint(nil)
	h, c := verifyToken(t, srv, tok, "ES256")
	if memberNames(h) != "alg,kid,typ" || h["alg"] != "ES256" || h["kid"] != srv.KeyIDs()[0] || h["typ"] != "at+jwt" {
		t.Errorf("header = %v", h)
	}
	if got := memberNames(c); got != "aud,client_id,exp,iat,iss,jti,sub" {
		t.Errorf("claims are %s, want no scope and nothing else", got)
	}
	if c["iss"] != srv.Issuer || c["aud"] != srv.URL+"/api" || c["aud"] != srv.Resource() ||
		c["sub"] != "user-1" || c["client_id"] != "client-1" {
		t.Errorf("claims = %v", c)
	}
	if iat := numericClaim(t, c, "iat"); iat != fixedNow.Unix() {
		t.Errorf("iat = %d", iat)
	}
	if exp := numericClaim(t, c, "exp"); exp != fixedNow.Add(10*time.Minute).Unix() {
		t.Errorf("exp = %d", exp)
	}
	_, c2, _ := splitJWS(t, srv.Mint(nil))
	if jti, _ := c["jti"].(string); jti == "" || c2["jti"] == jti {
		t.Errorf("jti %v and %v: want distinct non-empty strings", c["jti"], c2["jti"])
	}
}

func TestMintClaims(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Now: func() time.Time { return fixedNow }})
	tests := []struct {
		name    string
		claims  oauthtest.Claims
		absent  []string
		compare map[string]string // claim -> JSON
	}{
		{
			name:   "nil removes defaults",
			claims: oauthtest.Claims{"exp": nil, "iat": nil, "jti": nil, "client_id": nil},
			absent: []string{"exp", "iat", "jti", "client_id"},
		},
		{
			name:   "nil for an absent claim is harmless",
			claims: oauthtest.Claims{"nbf": nil},
			absent: []string{"nbf"},
		},
		{
			name:    "override and add",
			claims:  oauthtest.Claims{"sub": "alice", "aud": []string{"a", "b"}, "scope": "read write", "iss": "https://evil.example"},
			compare: map[string]string{"sub": `"alice"`, "aud": `["a","b"]`, "scope": `"read write"`, "iss": `"https://evil.example"`},
		},
		{
			name:    "time.Time is a NumericDate",
			claims:  oauthtest.Claims{"nbf": fixedNow.Add(time.Minute), "exp": fixedNow.Add(-time.Hour)},
			compare: map[string]string{"nbf": strconv.FormatInt(fixedNow.Unix()+60, 10), "exp": strconv.FormatInt(fixedNow.Unix()-3600, 10)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, c := verifyToken(t, srv, srv.Mint(tc.claims), "RS256")
			for _, name := range tc.absent {
				if v, ok := c[name]; ok {
					t.Errorf("claim %s = %v, want absent", name, v)
				}
			}
			for name, want := range tc.compare {
				got, _ := json.Marshal(c[name])
				if string(got) != want {
					t.Errorf("claim %s = %s, want %s", name, got, want)
				}
			}
		})
	}
}

func TestMintWithHeader(t *testing.T) {
	srv := newServer(t, oauthtest.Options{})
	kid := srv.KeyIDs()[0]
	tests := []struct {
		name    string
		header  map[string]any
		members string
		check   func(h map[string]any) bool
	}{
		{"remove typ", map[string]any{"typ": nil}, "alg,kid", func(h map[string]any) bool { return true }},
		{"other typ", map[string]any{"typ": "JWT"}, "alg,kid,typ", func(h map[string]any) bool { return h["typ"] == "JWT" }},
		{"jku", map[string]any{"jku": "http://attacker.example/jwks"}, "alg,jku,kid,typ", func(h map[string]any) bool { return h["jku"] == "http://attacker.example/jwks" }},
		{"crit", map[string]any{"crit": []string{"x"}, "x": true}, "alg,crit,kid,typ,x", func(h map[string]any) bool {
			crit, _ := h["crit"].([]any)
			return len(crit) == 1 && crit[0] == "x"
		}},
		{"misstated alg", map[string]any{"alg": "HS256"}, "alg,kid,typ", func(h map[string]any) bool { return h["alg"] == "HS256" }},
	}
	keys := jwksByKID(t, srv)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := srv.MintWith(oauthtest.MintOptions{Header: tc.header})
			// Signed with the RS256 key whatever the header says.
			h, _ := verifyTokenWith(t, keys, tok, "RS256")
			if got := memberNames(h); got != tc.members || !tc.check(h) {
				t.Errorf("header = %v", h)
			}
		})
	}
	t.Run("other kid", func(t *testing.T) {
		tok := srv.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": "other"}})
		h, _, parts := splitJWS(t, tok)
		if h["kid"] != "other" {
			t.Fatalf("header = %v", h)
		}
		sig, _ := b64.DecodeString(parts[2])
		if err := verifySignature(publicKeyFromJWK(t, keys[kid]), "RS256", parts[0]+"."+parts[1], sig); err != nil {
			t.Errorf("not signed with the default key: %v", err)
		}
	})
	t.Run("no kid, claims too", func(t *testing.T) {
		tok := srv.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": nil}, Claims: oauthtest.Claims{"sub": "bob"}})
		h, c, _ := splitJWS(t, tok)
		if _, ok := h["kid"]; ok || c["sub"] != "bob" {
			t.Errorf("header %v claims %v", h, c)
		}
	})
}

func TestNegativeTokenLifetime(t *testing.T) {
	srv := newServer(t, oauthtest.Options{TokenLifetime: -time.Minute, Now: func() time.Time { return fixedNow }})
	_, c := verifyToken(t, srv, srv.Mint(nil), "RS256")
	if exp := numericClaim(t, c, "exp"); exp != fixedNow.Unix()-60 {
		t.Errorf("exp = %d, want a minute before now", exp)
	}
}

func TestMintBeforeStartPanics(t *testing.T) {
	srv := oauthtest.NewUnstartedServer(oauthtest.Options{Algorithms: []string{"EdDSA"}})
	defer srv.Close()
	mustPanic(t, "before the server started", func() { srv.Mint(nil) })
}
