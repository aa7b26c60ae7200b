package tggrpc_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// dpopOrigin is the DPoP Origin of the Guards of these tests: a proof
// names it and the method's path as htu, never the address the client
// dialled.
const dpopOrigin = "https://orders.example"

// dpopAlgs is the algs parameter of a DPoP challenge of a Guard with the
// default algorithms.
const dpopAlgs = `algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA Ed25519"`

// holder is a DPoP client: its key and the key's RFC 7638 thumbprint.
type holder struct {
	key *ecdsa.PrivateKey
	jwk map[string]any
	jkt string
}

func newHolder(t testing.TB) *holder {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	x, y := k.PublicKey.X.FillBytes(make([]byte, 32)), k.PublicKey.Y.FillBytes(make([]byte, 32))
	thumb := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + enc(x) + `","y":"` + enc(y) + `"}`))
	return &holder{key: k, jwk: map[string]any{"kty": "EC", "crv": "P-256", "x": enc(x), "y": enc(y)}, jkt: enc(thumb[:])}
}

var jtis atomic.Int64

// proof is a DPoP proof (RFC 9449 §4.2) of a request of htm to htu with
// token.
func (h *holder) proof(t testing.TB, htm, htu, token string) string {
	t.Helper()
	ath := sha256.Sum256([]byte(token))
	p, err := oauthtest.SignJWT(
		map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": h.jwk},
		map[string]any{"jti": fmt.Sprintf("jti-%d-%d", time.Now().UnixNano(), jtis.Add(1)), "htm": htm, "htu": htu,
			"iat": time.Now().Unix(), "ath": base64.RawURLEncoding.EncodeToString(ath[:])},
		h.key, "ES256")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// dpopMD is the metadata of a DPoP request: the token in the DPoP scheme
// and each proof as a dpop value.
func dpopMD(token string, proofs ...string) metadata.MD {
	md := metadata.MD{"authorization": {"DPoP " + token}}
	if len(proofs) > 0 {
		md["dpop"] = proofs
	}
	return md
}

// DPoP (RFC 9449) through gRPC: a bound token works with a proof for POST
// to Origin + "/package.Service/Method", once, and never as Bearer.
func TestDPoP(t *testing.T) {
	as, g := newGuard(t, func(c *tokenguard.Config) {
		c.DPoP = tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, Origin: dpopOrigin}
	})
	conn, rc := start(t, g, testOptions())
	alice, mallory := newHolder(t), newHolder(t)
	bound := as.Mint(oauthtest.Claims{"sub": "alice", "cnf": map[string]any{"jkt": alice.jkt}})
	getURL, watchURL := dpopOrigin+methodGet, dpopOrigin+methodWatch

	// Accepted: unary and stream, each with a proof of its own method.
	if o := unary(t, conn, methodGet, dpopMD(bound, alice.proof(t, "POST", getURL, bound))); o.code != codes.OK || o.reply != "alice jwt" {
		t.Fatalf("valid DPoP call: %v %q %q", o.code, o.msg, o.challenge())
	}
	if p := rc.last.Load(); p.Binding.JKT != alice.jkt {
		t.Errorf("Principal.Binding %+v, want jkt %s", p.Binding, alice.jkt)
	}
	if o := stream(t, conn, methodWatch, dpopMD(bound, alice.proof(t, "POST", watchURL, bound))); o.code != codes.OK || o.reply != "alice jwt" {
		t.Fatalf("valid DPoP stream: %v %q %q", o.code, o.msg, o.challenge())
	}

	// Refused. The scheme the call used carries the error, the other one is
	// offered beside it: both in one value, as Guard.Challenge joins them.
	dpopErr := func(code, desc string) string {
		return `DPoP realm="` + g.Resource() + `", ` + dpopAlgs + `, error="` + code + `", error_description="` + desc + `", resource_metadata="` + g.ResourceMetadataURL() + `", ` +
			wantChallenge(g, "", "")
	}
	replayed := alice.proof(t, "POST", getURL, bound)
	if o := unary(t, conn, methodGet, dpopMD(bound, replayed)); o.code != codes.OK {
		t.Fatalf("first use of a proof: %v %q", o.code, o.msg)
	}
	before := rc.calls.Load()
	for _, c := range []struct {
		name   string
		method string
		md     metadata.MD
		msg    string
		chal   string
	}{
		{"replayed proof", methodGet, dpopMD(bound, replayed), "DPoP proof replayed", dpopErr("invalid_dpop_proof", "DPoP proof replayed")},
		{"proof of another method", methodGet, dpopMD(bound, alice.proof(t, "POST", dpopOrigin+methodCreate, bound)), "invalid DPoP proof", dpopErr("invalid_dpop_proof", "invalid DPoP proof")},
		{"proof of a unary method on the stream", methodWatch, dpopMD(bound, alice.proof(t, "POST", getURL, bound)), "invalid DPoP proof", dpopErr("invalid_dpop_proof", "invalid DPoP proof")},
		{"proof for GET", methodGet, dpopMD(bound, alice.proof(t, "GET", getURL, bound)), "invalid DPoP proof", dpopErr("invalid_dpop_proof", "invalid DPoP proof")},
		{"proof for the dialled address", methodGet, dpopMD(bound, alice.proof(t, "POST", "http://bufconn"+methodGet, bound)), "invalid DPoP proof", dpopErr("invalid_dpop_proof", "invalid DPoP proof")},
		{"no proof", methodGet, dpopMD(bound), "exactly one DPoP proof required", dpopErr("invalid_dpop_proof", "exactly one DPoP proof required")},
		{"two proofs", methodGet, dpopMD(bound, alice.proof(t, "POST", getURL, bound), alice.proof(t, "POST", getURL, bound)), "exactly one DPoP proof required", dpopErr("invalid_dpop_proof", "exactly one DPoP proof required")},
		{"another key's proof", methodGet, dpopMD(bound, mallory.proof(t, "POST", getURL, bound)), "token not bound to the DPoP key", dpopErr("invalid_token", "token not bound to the DPoP key")},
		{"bound token as Bearer", methodGet, authMD(bearer(bound)), "token requires proof of possession",
			wantChallenge(g, "invalid_token", "token requires proof of possession") + `, DPoP realm="` + g.Resource() + `", ` + dpopAlgs + `, resource_metadata="` + g.ResourceMetadataURL() + `"`},
		{"bound token as Bearer with a proof", methodGet, authMD(bearer(bound), "dpop", alice.proof(t, "POST", getURL, bound)), "token requires proof of possession",
			wantChallenge(g, "invalid_token", "token requires proof of possession") + `, DPoP realm="` + g.Resource() + `", ` + dpopAlgs + `, resource_metadata="` + g.ResourceMetadataURL() + `"`},
	} {
		var o outcome
		if c.method == methodWatch {
			o = stream(t, conn, c.method, c.md)
		} else {
			o = unary(t, conn, c.method, c.md)
		}
		if o.code != codes.Unauthenticated || o.msg != c.msg {
			t.Errorf("%s: %v %q, want Unauthenticated %q", c.name, o.code, o.msg, c.msg)
		}
		if got := o.challenge(); got != c.chal {
			t.Errorf("%s: www-authenticate\n got %q\nwant %q", c.name, got, c.chal)
		}
		if strings.Contains(o.msg, bound) || strings.Contains(o.challenge(), bound) {
			t.Errorf("%s: the refusal shows the token", c.name)
		}
	}
	if n := rc.calls.Load() - before; n != 0 {
		t.Errorf("%d refused calls reached the handler", n)
	}
	// An unbound token as Bearer still works in DPoPAllowed mode.
	if o := unary(t, conn, methodGet, authMD(bearer(as.Mint(oauthtest.Claims{"sub": "bob"})))); o.code != codes.OK || o.reply != "bob jwt" {
		t.Errorf("bearer token: %v %q", o.code, o.msg)
	}
}

// With DPoP disabled (the default), a DPoP-bound token is refused in
// either scheme.
func TestDPoPDisabled(t *testing.T) {
	as, g := newGuard(t, nil)
	conn, _ := start(t, g, testOptions())
	alice := newHolder(t)
	bound := as.Mint(oauthtest.Claims{"sub": "alice", "cnf": map[string]any{"jkt": alice.jkt}})
	if o := unary(t, conn, methodGet, authMD(bearer(bound))); o.code != codes.Unauthenticated ||
		o.challenge() != wantChallenge(g, "invalid_token", "token requires proof of possession") {
		t.Errorf("as Bearer: %v %q %q", o.code, o.msg, o.challenge())
	}
	md := dpopMD(bound, alice.proof(t, "POST", "http://127.0.0.1"+methodGet, bound))
	if o := unary(t, conn, methodGet, md); o.code != codes.Unauthenticated || o.challenge() != wantChallenge(g, "", "") {
		t.Errorf("as DPoP: %v %q %q", o.code, o.msg, o.challenge())
	}
}
