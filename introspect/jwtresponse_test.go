package introspect_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard/introspect"
	"github.com/tokenguard/tokenguard/jwks"
)

const (
	jwtIssuer   = "https://as.example"
	jwtClientID = "resource-server-1"
)

var b64 = base64.RawURLEncoding

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keySet serves k as a JWK Set and returns a jwks.Set over it.
func keySet(t *testing.T, k *ecdsa.PrivateKey) *jwks.Set {
	t.Helper()
	pub, err := k.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	pt := pub.Bytes() // 0x04 || X || Y
	doc := fmt.Sprintf(`{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","use":"sig","x":%q,"y":%q}]}`,
		b64.EncodeToString(pt[1:33]), b64.EncodeToString(pt[33:]))
	srv := server(t, jsonReply(200, doc))
	set, err := jwks.New(context.Background(), srv.URL, jwks.Options{InsecureAllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	return set
}

// signES256 makes a compact JWS of claims with header.
func signES256(t *testing.T, k *ecdsa.PrivateKey, header, claims any) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	in := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	d := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + b64.EncodeToString(sig)
}

func TestJWTResponse(t *testing.T) {
	key, other := newECKey(t), newECKey(t)
	set := keySet(t, key)
	hdr := map[string]any{"alg": "ES256", "kid": "k1", "typ": "token-introspection+jwt"}
	claims := func(ti any) map[string]any {
		return map[string]any{"iss": jwtIssuer, "aud": jwtClientID, "iat": now.Unix(), "token_introspection": ti}
	}
	active := map[string]any{"active": true, "sub": "alice", "scope": "read", "exp": now.Add(time.Hour).Unix(), "ext": "kept"}
	with := func(m map[string]any, k string, v any) map[string]any {
		c := make(map[string]any, len(m)+1)
		for kk, vv := range m {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	tests := []struct {
		name  string
		body  func(t *testing.T) string
		ctype string   // "" means application/token-introspection+jwt
		algs  []string // ResponseAlgorithms
		want  string   // "active", "inactive", "token", "bad", "upstream"
	}{
		{name: "active", want: "active", body: func(t *testing.T) string { return signES256(t, key, hdr, claims(active)) }},
		{name: "inactive", want: "inactive", body: func(t *testing.T) string {
			return signES256(t, key, hdr, claims(map[string]any{"active": false}))
		}},
		{name: "typ with application/ prefix", want: "active", body: func(t *testing.T) string {
			return signES256(t, key, with(hdr, "typ", "application/token-introspection+jwt"), claims(active))
		}},
		{name: "aud array", want: "active", body: func(t *testing.T) string {
			return signES256(t, key, hdr, with(claims(active), "aud", []string{"x", jwtClientID}))
		}},
		{name: "expired token inside", want: "token", body: func(t *testing.T) string {
			return signES256(t, key, hdr, claims(with(active, "exp", now.Add(-time.Minute).Unix())))
		}},
		{name: "typ JWT", want: "bad", body: func(t *testing.T) string { return signES256(t, key, with(hdr, "typ", "JWT"), claims(active)) }},
		{name: "typ at+jwt (an access token)", want: "bad", body: func(t *testing.T) string {
			return signES256(t, key, with(hdr, "typ", "at+jwt"), claims(active))
		}},
		{name: "no typ", want: "bad", body: func(t *testing.T) string { return signES256(t, key, with(hdr, "typ", nil), claims(active)) }},
		{name: "alg none", want: "bad", body: func(t *testing.T) string {
			s := signES256(t, key, with(hdr, "alg", "none"), claims(active))
			return s[:strings.LastIndexByte(s, '.')+1]
		}},
		{name: "crit header", want: "bad", body: func(t *testing.T) string {
			return signES256(t, key, with(hdr, "crit", []string{"exp"}), claims(active))
		}},
		{name: "signed by another key", want: "bad", body: func(t *testing.T) string { return signES256(t, other, hdr, claims(active)) }},
		{name: "payload swapped", want: "bad", body: func(t *testing.T) string {
			good := strings.Split(signES256(t, key, hdr, claims(map[string]any{"active": false})), ".")
			forged := strings.Split(signES256(t, other, hdr, claims(active)), ".")
			return good[0] + "." + forged[1] + "." + good[2]
		}},
		{name: "wrong iss", want: "bad", body: func(t *testing.T) string {
			return signES256(t, key, hdr, with(claims(active), "iss", "https://evil.example"))
		}},
		{name: "aud lacks client id", want: "bad", body: func(t *testing.T) string {
			return signES256(t, key, hdr, with(claims(active), "aud", "someone-else"))
		}},
		{name: "no iat", want: "bad", body: func(t *testing.T) string { return signES256(t, key, hdr, with(claims(active), "iat", nil)) }},
		{name: "stale iat", want: "bad", body: func(t *testing.T) string {
			return signES256(t, key, hdr, with(claims(active), "iat", now.Add(-10*time.Minute).Unix()))
		}},
		{name: "iat in the future", want: "bad", body: func(t *testing.T) string {
			return signES256(t, key, hdr, with(claims(active), "iat", now.Add(10*time.Minute).Unix()))
		}},
		{name: "token_introspection missing", want: "bad", body: func(t *testing.T) string {
			return signES256(t, key, hdr, with(claims(active), "token_introspection", nil))
		}},
		{name: "token_introspection a string", want: "bad", body: func(t *testing.T) string {
			return signES256(t, key, hdr, claims(`{"active":true}`))
		}},
		{name: "plain JSON answer (downgrade)", want: "bad", ctype: "application/json", body: func(*testing.T) string { return `{"active":true}` }},
		{name: "JWT labelled JSON", want: "bad", ctype: "application/json", body: func(t *testing.T) string {
			return signES256(t, key, hdr, claims(active))
		}},
		{name: "alg in ResponseAlgorithms", algs: []string{"RS256", "ES256"}, want: "active", body: func(t *testing.T) string { return signES256(t, key, hdr, claims(active)) }},
		{name: "alg not in ResponseAlgorithms", algs: []string{"RS256", "EdDSA"}, want: "bad", body: func(t *testing.T) string { return signES256(t, key, hdr, claims(active)) }},
		{name: "unknown kid", want: "upstream", body: func(t *testing.T) string { return signES256(t, key, with(hdr, "kid", "k9"), claims(active)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body(t)
			var n counter
			srv := server(t, func(w http.ResponseWriter, r *http.Request) {
				n.record(r)
				ct := tc.ctype
				if ct == "" {
					ct = "application/token-introspection+jwt"
				}
				w.Header().Set("Content-Type", ct)
				fmt.Fprint(w, body)
			})
			c := newClient(t, introspect.Config{
				Endpoint: srv.URL, ClientID: jwtClientID, ClientSecret: "s",
				ResponseKeys: set, ResponseIssuer: jwtIssuer, ResponseAlgorithms: tc.algs,
			})
			r, err := call(t, c)
			if a := n.last(t).header.Get("Accept"); a != "application/token-introspection+jwt" {
				t.Errorf("Accept = %q", a)
			}
			switch tc.want {
			case "active", "inactive":
				if err != nil {
					t.Fatal(err)
				}
				if r.Active != (tc.want == "active") {
					t.Fatalf("Active = %v, want %s", r.Active, tc.want)
				}
				if tc.want == "active" && (r.Subject != "alice" || !strings.Contains(string(r.Raw), `"ext":"kept"`) || strings.Contains(string(r.Raw), "token_introspection")) {
					t.Errorf("result %+v, Raw %s: want the token_introspection object", r, r.Raw)
				}
			case "token":
				wantTokenError(t, err)
			case "bad":
				if wantUpstream(t, err); !errors.Is(err, introspect.ErrBadResponse) {
					t.Errorf("err = %v, want ErrBadResponse", err)
				}
			case "upstream":
				if wantUpstream(t, err); !errors.Is(err, jwks.ErrUnknownKey) {
					t.Errorf("err = %v, want jwks.ErrUnknownKey inside", err)
				}
			}
		})
	}
}

func TestJWTResponseConfig(t *testing.T) {
	set := keySet(t, newECKey(t))
	for _, cfg := range []introspect.Config{
		{Endpoint: "https://as.example/introspect", ClientID: "id", ClientSecret: "s", ResponseKeys: set},
		{Endpoint: "https://as.example/introspect", AuthMethod: introspect.AuthNone, ResponseKeys: set, ResponseIssuer: jwtIssuer},
	} {
		if _, err := introspect.New(cfg); err == nil || !strings.Contains(err.Error(), "ResponseKeys needs") {
			t.Errorf("New(%+v) = %v, want a ResponseKeys error", cfg, err)
		}
	}
}
