// Package conformance is one table of requests and the exact answers
// tokenguard must give them, run against any way of mounting a Guard: plain
// net/http, chi, gin, echo, or your own. It is how every adapter proves it
// adds no behaviour of its own, and how you can check your own wiring.
//
// A test supplies a Build function that mounts two routes behind the
// Guard it is given:
//
//	GET /any     any valid token; the handler calls Probe
//	GET /scoped  requires scope "orders:write"; the handler calls Probe
//
// The handler must call Probe with the Principal as the framework exposes
// it (nil if it has none). Run then sends every row and checks the status,
// every WWW-Authenticate value in order, Retry-After, DPoP-Nonce, the JSON
// body, and whether the handler was reached with the right Principal.
//
// Some rows run against a Guard that takes DPoP (RFC 9449) with Origin as
// its public origin, so the proofs they send name Origin plus the row's
// path whatever host the request reaches. Transports that are not an
// http.Handler (gRPC) run the rows themselves with NewFixture,
// Row.Header and Row.WantChallenges.
package conformance

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Routes the Build function must serve.
const (
	PathAny    = "/any"
	PathScoped = "/scoped"
	// ScopeRequired is what PathScoped requires.
	ScopeRequired = "orders:write"
)

// Origin is Config.DPoP.Origin of the Guards of the DPoP rows: a proof's
// htu is Origin plus the request's path.
const Origin = "https://rs.conformance.example"

// dpopAlgs are the proof algorithms of the DPoP rows' Guards, fixed so
// that the challenges do not follow the core's default list.
var dpopAlgs = []string{"ES256", "EdDSA"}

// Setup is what Build receives.
type Setup struct {
	// Guard protects the routes.
	Guard *tokenguard.Guard
	// Probe must be called by both routes' handlers with the Principal as
	// the framework exposes it. It writes the response.
	Probe func(w http.ResponseWriter, p *tokenguard.Principal)
}

// Build mounts the two routes behind s.Guard and returns the whole server.
type Build func(t testing.TB, s Setup) http.Handler

// probeBody is what Probe writes: enough to tell principals apart.
type probeBody struct {
	Reached bool     `json:"reached"`
	Subject string   `json:"sub"`
	Kind    string   `json:"kind"`
	Scopes  []string `json:"scopes"`
}

// Probe writes what a protected handler saw. It is exported for Setup.Probe
// only; Run passes it in.
func Probe(w http.ResponseWriter, p *tokenguard.Principal) {
	w.Header().Set("Content-Type", "application/json")
	if p == nil {
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(probeBody{Reached: true})
		return
	}
	_ = json.NewEncoder(w).Encode(probeBody{Reached: true, Subject: p.Subject, Kind: p.Kind.String(), Scopes: p.Scopes})
}

// Row is one request and the answer it must get.
type Row struct {
	Name string
	// Path is PathAny or PathScoped.
	Path string
	// DPoP is the Guard's DPoP mode; zero for a Guard without DPoP.
	DPoP tokenguard.DPoPMode
	// Nonces gives the Guard a DPoP NonceKey (RFC 9449 §8).
	Nonces bool
	// Request returns the request's headers (Authorization, DPoP: none,
	// one, or more values) for a request of method to url, the URL a DPoP
	// proof names. It may also arrange the server (revoke a token, inject
	// a fault). Use Row.Header, which passes the Fixture.
	Request func(f Fixture, method, url string) http.Header
	// Status is the HTTP status.
	Status int
	// Challenges are the exact WWW-Authenticate values, in order (none
	// for no header); {realm} and {rm} stand for the realm and the
	// resource metadata URL. Use Row.WantChallenges.
	Challenges []string
	// Body is the exact JSON body for a rejection; for a 200 it is unused
	// and Subject and Kind are checked instead.
	Body string
	// RetryAfter is the exact Retry-After header ("" for none).
	RetryAfter string
	// DPoPNonce says the answer must carry a DPoP-Nonce header (the
	// Guard's current nonce).
	DPoPNonce bool
	// Subject and Kind are what the handler must see on a 200.
	Subject, Kind string
}

// Fixture is what a row runs against: a fresh authorization server and a
// Guard that trusts it, configured for the row.
type Fixture struct {
	Server *oauthtest.Server
	Guard  *tokenguard.Guard
}

// NewFixture starts the authorization server and the Guard Run uses for
// row; both are closed at t.Cleanup.
func NewFixture(t testing.TB, row Row) Fixture {
	t.Helper()
	as := oauthtest.NewServer(oauthtest.Options{})
	t.Cleanup(as.Close)
	as.RegisterClient(rsClient, rsSecret)
	cfg := tokenguard.Config{
		ResourceMetadataURL: as.ResourceMetadataURL(),
		InsecureAllowHTTP:   true,
		Introspection:       tokenguard.IntrospectionConfig{ClientID: rsClient, ClientSecret: rsSecret},
	}
	if row.DPoP != 0 {
		cfg.DPoP = tokenguard.DPoPConfig{Mode: row.DPoP, Origin: Origin, Algorithms: dpopAlgs}
		if row.Nonces {
			cfg.DPoP.NonceKey = []byte("conformance nonce key, 32 bytes!")
		}
	}
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("tokenguard.New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return Fixture{Server: as, Guard: g}
}

// Header is the row's request headers for a request of method to url.
func (row Row) Header(f Fixture, method, url string) http.Header {
	return row.Request(f, method, url)
}

// WantChallenges are the row's WWW-Authenticate values for f's Guard.
func (row Row) WantChallenges(f Fixture) []string {
	r := strings.NewReplacer("{realm}", f.Guard.Resource(), "{rm}", f.Guard.ResourceMetadataURL(), "{algs}", `algs="`+strings.Join(dpopAlgs, " ")+`"`)
	var out []string
	for _, c := range row.Challenges {
		out = append(out, r.Replace(c))
	}
	return out
}

// The Guard's client at the authorization server, for introspection.
const (
	rsClient, rsSecret = "conformance-rs", "conformance secret"
)

// Rows is the table.
func Rows() []Row {
	invalid := func(desc string) ([]string, string) {
		return []string{`Bearer realm="{realm}", error="invalid_token", error_description="` + desc + `", resource_metadata="{rm}"`},
			`{"error":"invalid_token","error_description":"` + desc + `"}`
	}
	// tokens makes a Request of Authorization values.
	tokens := func(f func(as *oauthtest.Server) []string) func(Fixture, string, string) http.Header {
		return func(fx Fixture, _, _ string) http.Header {
			h := http.Header{}
			for _, v := range f(fx.Server) {
				h.Add("Authorization", v)
			}
			return h
		}
	}
	row := func(name, path string, tok func(*oauthtest.Server) []string, status int, desc string) Row {
		r := Row{Name: name, Path: path, Request: tokens(tok), Status: status}
		if status == http.StatusUnauthorized {
			r.Challenges, r.Body = invalid(desc)
		}
		return r
	}
	bearer := func(s string) []string { return []string{"Bearer " + s} }
	unavailable := `{"error":"temporarily_unavailable","error_description":"authorization server unavailable, retry later"}`
	rows := []Row{
		{Name: "valid JWT", Path: PathAny, Status: 200, Subject: "alice", Kind: "jwt",
			Request: tokens(func(as *oauthtest.Server) []string { return bearer(as.Mint(oauthtest.Claims{"sub": "alice"})) })},
		{Name: "valid JWT with the route's scope", Path: PathScoped, Status: 200, Subject: "alice", Kind: "jwt",
			Request: tokens(func(as *oauthtest.Server) []string {
				return bearer(as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:read " + ScopeRequired}))
			})},
		{Name: "no token", Path: PathAny, Status: 401,
			Request:    tokens(func(*oauthtest.Server) []string { return nil }),
			Challenges: []string{`Bearer realm="{realm}", resource_metadata="{rm}"`}, Body: `{"error_description":"bearer token required"}`},
		row("expired", PathAny, func(as *oauthtest.Server) []string {
			return bearer(as.Mint(oauthtest.Claims{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()}))
		}, 401, "token expired"),
		row("forged signature", PathAny, func(as *oauthtest.Server) []string {
			return bearer(forge(as.Mint(nil)))
		}, 401, "invalid signature"),
		row("wrong audience", PathAny, func(as *oauthtest.Server) []string {
			return bearer(as.Mint(oauthtest.Claims{"aud": "https://another-api.example"}))
		}, 401, "token not meant for this resource"),
		{Name: "missing scope", Path: PathScoped, Status: 403,
			Request: tokens(func(as *oauthtest.Server) []string {
				return bearer(as.Mint(oauthtest.Claims{"scope": "orders:read"}))
			}),
			Challenges: []string{`Bearer realm="{realm}", error="insufficient_scope", error_description="token lacks a required scope", scope="` + ScopeRequired + `", resource_metadata="{rm}"`},
			Body:       `{"error":"insufficient_scope","error_description":"token lacks a required scope","scope":"` + ScopeRequired + `"}`},
		{Name: "opaque token, active", Path: PathAny, Status: 200, Subject: "bob", Kind: "opaque",
			Request: tokens(func(as *oauthtest.Server) []string { return bearer(as.MintOpaque(oauthtest.Claims{"sub": "bob"})) })},
		row("opaque token, revoked", PathAny, func(as *oauthtest.Server) []string {
			tok := as.MintOpaque(nil)
			as.Revoke(tok)
			return bearer(tok)
		}, 401, "token is not active"),
		{Name: "introspection endpoint down", Path: PathAny, Status: 503, RetryAfter: "5",
			Request: tokens(func(as *oauthtest.Server) []string {
				as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: http.StatusBadGateway})
				return bearer(as.MintOpaque(nil))
			}),
			Body: unavailable},
		{Name: "key set unreachable for a new key", Path: PathAny, Status: 503, RetryAfter: "5",
			Request: tokens(func(as *oauthtest.Server) []string {
				as.RotateKey("RS256")
				as.SetFault(oauthtest.EndpointJWKS, &oauthtest.Fault{Status: http.StatusInternalServerError})
				return bearer(as.Mint(nil))
			}),
			Body: unavailable},
		{Name: "two Authorization headers", Path: PathAny, Status: 400,
			Request: tokens(func(as *oauthtest.Server) []string {
				tok := "Bearer " + as.Mint(nil)
				return []string{tok, tok}
			}),
			Challenges: []string{`Bearer realm="{realm}", error="invalid_request", error_description="more than one Authorization header", resource_metadata="{rm}"`},
			Body:       `{"error":"invalid_request","error_description":"more than one Authorization header"}`},
	}
	return append(rows, dpopRows()...)
}

// dpopRows run against a Guard in DPoPAllowed mode (RFC 9449): a bound
// token needs a proof of its key for this request, and every 401 offers
// both schemes, the one the request used first.
func dpopRows() []Row {
	key := oauthtest.NewDPoPKey("ES256")
	other := oauthtest.NewDPoPKey("EdDSA")
	// proofed sends token with a proof that edit may change.
	proofed := func(mint func(as *oauthtest.Server) string, sign func(token, method, url string) []string) func(Fixture, string, string) http.Header {
		return func(f Fixture, method, url string) http.Header {
			tok := mint(f.Server)
			h := http.Header{"Authorization": {"DPoP " + tok}}
			for _, p := range sign(tok, method, url) {
				h.Add("DPoP", p)
			}
			return h
		}
	}
	own := func(token, method, url string) []string { return []string{key.Proof(method, url, token)} }
	boundJWT := func(as *oauthtest.Server) string { return as.Mint(key.Bind(oauthtest.Claims{"sub": "alice"})) }
	dpopErr := func(code, desc string) ([]string, string) {
		return []string{`DPoP realm="{realm}", {algs}, error="` + code + `", error_description="` + desc + `", resource_metadata="{rm}"`,
				`Bearer realm="{realm}", resource_metadata="{rm}"`},
			`{"error":"` + code + `","error_description":"` + desc + `"}`
	}
	refused := func(name string, req func(Fixture, string, string) http.Header, code, desc string) Row {
		c, b := dpopErr(code, desc)
		return Row{Name: name, Path: PathAny, DPoP: tokenguard.DPoPAllowed, Request: req, Status: 401, Challenges: c, Body: b}
	}
	bareDPoP := `DPoP realm="{realm}", {algs}, resource_metadata="{rm}"`
	rows := []Row{
		{Name: "DPoP: bound JWT with its proof", Path: PathAny, DPoP: tokenguard.DPoPAllowed, Status: 200, Subject: "alice", Kind: "jwt",
			Request: proofed(boundJWT, own)},
		{Name: "DPoP: bound opaque token with its proof", Path: PathAny, DPoP: tokenguard.DPoPAllowed, Status: 200, Subject: "bob", Kind: "opaque",
			Request: proofed(func(as *oauthtest.Server) string { return as.MintOpaque(key.Bind(oauthtest.Claims{"sub": "bob"})) }, own)},
		{Name: "DPoP: bound JWT with the route's scope", Path: PathScoped, DPoP: tokenguard.DPoPAllowed, Status: 200, Subject: "alice", Kind: "jwt",
			Request: proofed(func(as *oauthtest.Server) string {
				return as.Mint(key.Bind(oauthtest.Claims{"sub": "alice", "scope": ScopeRequired}))
			}, own)},
		{Name: "DPoP: a plain token as Bearer still works", Path: PathAny, DPoP: tokenguard.DPoPAllowed, Status: 200, Subject: "carol", Kind: "jwt",
			Request: func(f Fixture, _, _ string) http.Header {
				return http.Header{"Authorization": {"Bearer " + f.Server.Mint(oauthtest.Claims{"sub": "carol"})}}
			}},
		{Name: "DPoP: no token", Path: PathAny, DPoP: tokenguard.DPoPAllowed, Status: 401,
			Request:    func(Fixture, string, string) http.Header { return http.Header{} },
			Challenges: []string{`Bearer realm="{realm}", resource_metadata="{rm}"`, bareDPoP}, Body: `{"error_description":"bearer token required"}`},
		{Name: "DPoP: bound JWT as Bearer", Path: PathAny, DPoP: tokenguard.DPoPAllowed, Status: 401,
			Request: func(f Fixture, _, _ string) http.Header {
				return http.Header{"Authorization": {"Bearer " + boundJWT(f.Server)}}
			},
			Challenges: []string{`Bearer realm="{realm}", error="invalid_token", error_description="token requires proof of possession", resource_metadata="{rm}"`, bareDPoP},
			Body:       `{"error":"invalid_token","error_description":"token requires proof of possession"}`},
		refused("DPoP: no proof", proofed(boundJWT, func(string, string, string) []string { return nil }),
			"invalid_dpop_proof", "exactly one DPoP proof required"),
		refused("DPoP: two proofs", proofed(boundJWT, func(token, method, url string) []string {
			return []string{key.Proof(method, url, token), key.Proof(method, url, token)}
		}), "invalid_dpop_proof", "exactly one DPoP proof required"),
		refused("DPoP: proof of another key", proofed(boundJWT, func(token, method, url string) []string {
			return []string{other.Proof(method, url, token)}
		}), "invalid_token", "token not bound to the DPoP key"),
		refused("DPoP: proof for another URL", proofed(boundJWT, func(token, method, _ string) []string {
			return []string{key.Proof(method, Origin+"/elsewhere", token)}
		}), "invalid_dpop_proof", "invalid DPoP proof"),
		refused("DPoP: proof for another method", proofed(boundJWT, func(token, _, url string) []string {
			return []string{key.Proof("DELETE", url, token)}
		}), "invalid_dpop_proof", "invalid DPoP proof"),
		refused("DPoP: proof for another token", proofed(boundJWT, func(_, method, url string) []string {
			return []string{key.Proof(method, url, "another token")}
		}), "invalid_dpop_proof", "invalid DPoP proof"),
		refused("DPoP: forged proof signature", proofed(boundJWT, func(token, method, url string) []string {
			return []string{forge(key.Proof(method, url, token))}
		}), "invalid_dpop_proof", "invalid DPoP proof"),
		refused("DPoP: proof too old", proofed(boundJWT, func(token, method, url string) []string {
			return []string{key.ProofWith(oauthtest.ProofOptions{Method: method, URL: url, Token: token, IssuedAt: time.Now().Add(-time.Hour)})}
		}), "invalid_dpop_proof", "invalid DPoP proof"),
		refused("DPoP: unbound token with a proof", proofed(func(as *oauthtest.Server) string { return as.Mint(nil) }, own),
			"invalid_token", "token not bound to the DPoP key"),
		refused("DPoP: expired bound token", proofed(func(as *oauthtest.Server) string {
			return as.Mint(key.Bind(oauthtest.Claims{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()}))
		}, own), "invalid_token", "token expired"),
		{Name: "DPoP: bound JWT, missing scope", Path: PathScoped, DPoP: tokenguard.DPoPAllowed, Status: 403,
			Request: proofed(boundJWT, own),
			Challenges: []string{`DPoP realm="{realm}", {algs}, error="insufficient_scope", error_description="token lacks a required scope", scope="` + ScopeRequired + `", resource_metadata="{rm}"`,
				`Bearer realm="{realm}", resource_metadata="{rm}"`},
			Body: `{"error":"insufficient_scope","error_description":"token lacks a required scope","scope":"` + ScopeRequired + `"}`},
		{Name: "DPoP required: a plain token as Bearer", Path: PathAny, DPoP: tokenguard.DPoPRequired, Status: 401,
			Request: func(f Fixture, _, _ string) http.Header {
				return http.Header{"Authorization": {"Bearer " + f.Server.Mint(nil)}}
			},
			Challenges: []string{`DPoP realm="{realm}", {algs}, error="invalid_token", error_description="DPoP proof required", resource_metadata="{rm}"`},
			Body:       `{"error":"invalid_token","error_description":"DPoP proof required"}`},
		{Name: "DPoP required: bound JWT with its proof", Path: PathAny, DPoP: tokenguard.DPoPRequired, Status: 200, Subject: "alice", Kind: "jwt",
			Request: proofed(boundJWT, own)},
	}
	nonce := refused("DPoP nonce: proof without the nonce", proofed(boundJWT, own), "use_dpop_nonce", "DPoP nonce required")
	nonce.Nonces, nonce.DPoPNonce = true, true
	rows = append(rows, nonce, Row{Name: "DPoP nonce: proof with the nonce", Path: PathAny, DPoP: tokenguard.DPoPAllowed, Nonces: true, Status: 200, Subject: "alice", Kind: "jwt",
		Request: func(f Fixture, method, url string) http.Header {
			tok := boundJWT(f.Server)
			return http.Header{"Authorization": {"DPoP " + tok}, "Dpop": {key.ProofWith(oauthtest.ProofOptions{Method: method, URL: url, Token: tok, Nonce: f.Guard.DPoPNonce()})}}
		}})
	return rows
}

// forge changes one character of a JWS's signature to another base64url
// character: the signature changes, its syntax does not.
func forge(jws string) string {
	i := strings.LastIndexByte(jws, '.')
	sig := []byte(jws[i+1:])
	if sig[5] == 'A' {
		sig[5] = 'B'
	} else {
		sig[5] = 'A'
	}
	return jws[:i+1] + string(sig)
}

// Run sends every row of Rows to the handler build returns, each row
// against a fresh authorization server and Guard (NewFixture), and fails
// t on any difference. Rows run as subtests. The requests are GETs of
// Origin's host; DPoP proofs name Origin plus the row's path.
func Run(t *testing.T, build Build) {
	for _, row := range Rows() {
		t.Run(row.Name, func(t *testing.T) {
			f := NewFixture(t, row)
			h := build(t, Setup{Guard: f.Guard, Probe: Probe})
			check(t, row, f, h)
		})
	}
}

func check(t *testing.T, row Row, f Fixture, h http.Handler) {
	t.Helper()
	url := Origin + row.Path
	r := httptest.NewRequest(http.MethodGet, url, nil)
	for name, values := range row.Header(f, http.MethodGet, url) {
		for _, v := range values {
			r.Header.Add(name, v)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := w.Result()
	body, _ := io.ReadAll(res.Body)

	if res.StatusCode != row.Status {
		t.Errorf("status %d, want %d (body %s)", res.StatusCode, row.Status, body)
	}
	if got, want := res.Header.Values("WWW-Authenticate"), row.WantChallenges(f); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("WWW-Authenticate\n got %q\nwant %q", got, want)
	}
	if got := res.Header.Get("Retry-After"); got != row.RetryAfter {
		t.Errorf("Retry-After %q, want %q", got, row.RetryAfter)
	}
	if got := res.Header.Get("DPoP-Nonce"); row.DPoPNonce && got != f.Guard.DPoPNonce() {
		t.Errorf("DPoP-Nonce %q, want %q", got, f.Guard.DPoPNonce())
	}
	var probe probeBody
	_ = json.Unmarshal(body, &probe)
	if row.Status == http.StatusOK {
		if !probe.Reached || probe.Subject != row.Subject || probe.Kind != row.Kind {
			t.Errorf("handler saw %+v, want subject %q kind %q", probe, row.Subject, row.Kind)
		}
		return
	}
	if probe.Reached {
		t.Errorf("the protected handler was reached: %s", body)
	}
	if got := strings.TrimSpace(string(body)); got != row.Body {
		t.Errorf("body\n got %s\nwant %s", got, row.Body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}
