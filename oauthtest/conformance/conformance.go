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
// WWW-Authenticate, Retry-After, the JSON body, and whether the handler was
// reached with the right Principal.
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
	// Authorization returns the request's Authorization header values
	// (none, one, or more). It may also arrange the server (revoke a token,
	// inject a fault).
	Authorization func(as *oauthtest.Server) []string
	// Status is the HTTP status.
	Status int
	// Challenge is the exact WWW-Authenticate ("" for none); {realm} and
	// {rm} stand for the realm and the resource metadata URL.
	Challenge string
	// Body is the exact JSON body for a rejection; for a 200 it is unused
	// and Subject and Kind are checked instead.
	Body string
	// RetryAfter is the exact Retry-After header ("" for none).
	RetryAfter string
	// Subject and Kind are what the handler must see on a 200.
	Subject, Kind string
}

const (
	rsClient, rsSecret = "conformance-rs", "conformance secret"
)

// Rows is the table.
func Rows() []Row {
	invalid := func(desc string) (string, string) {
		return `Bearer realm="{realm}", error="invalid_token", error_description="` + desc + `", resource_metadata="{rm}"`,
			`{"error":"invalid_token","error_description":"` + desc + `"}`
	}
	row := func(name, path string, tok func(*oauthtest.Server) []string, status int, desc string) Row {
		r := Row{Name: name, Path: path, Authorization: tok, Status: status}
		if status == http.StatusUnauthorized {
			r.Challenge, r.Body = invalid(desc)
		}
		return r
	}
	bearer := func(s string) []string { return []string{"Bearer " + s} }
	rows := []Row{
		{Name: "valid JWT", Path: PathAny, Status: 200, Subject: "alice", Kind: "jwt",
			Authorization: func(as *oauthtest.Server) []string { return bearer(as.Mint(oauthtest.Claims{"sub": "alice"})) }},
		{Name: "valid JWT with the route's scope", Path: PathScoped, Status: 200, Subject: "alice", Kind: "jwt",
			Authorization: func(as *oauthtest.Server) []string {
				return bearer(as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:read " + ScopeRequired}))
			}},
		{Name: "no token", Path: PathAny, Status: 401,
			Authorization: func(*oauthtest.Server) []string { return nil },
			Challenge:     `Bearer realm="{realm}", resource_metadata="{rm}"`, Body: `{"error_description":"bearer token required"}`},
		row("expired", PathAny, func(as *oauthtest.Server) []string {
			return bearer(as.Mint(oauthtest.Claims{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()}))
		}, 401, "token expired"),
		row("forged signature", PathAny, func(as *oauthtest.Server) []string {
			tok := as.Mint(nil)
			i := strings.LastIndexByte(tok, '.')
			sig := []byte(tok[i+1:])
			if sig[5] == 'A' { // another base64url character: the signature changes, its syntax does not
				sig[5] = 'B'
			} else {
				sig[5] = 'A'
			}
			return bearer(tok[:i+1] + string(sig))
		}, 401, "invalid signature"),
		row("wrong audience", PathAny, func(as *oauthtest.Server) []string {
			return bearer(as.Mint(oauthtest.Claims{"aud": "https://another-api.example"}))
		}, 401, "token not meant for this resource"),
		{Name: "missing scope", Path: PathScoped, Status: 403,
			Authorization: func(as *oauthtest.Server) []string {
				return bearer(as.Mint(oauthtest.Claims{"scope": "orders:read"}))
			},
			Challenge: `Bearer realm="{realm}", error="insufficient_scope", error_description="token lacks a required scope", scope="` + ScopeRequired + `", resource_metadata="{rm}"`,
			Body:      `{"error":"insufficient_scope","error_description":"token lacks a required scope","scope":"` + ScopeRequired + `"}`},
		{Name: "opaque token, active", Path: PathAny, Status: 200, Subject: "bob", Kind: "opaque",
			Authorization: func(as *oauthtest.Server) []string { return bearer(as.MintOpaque(oauthtest.Claims{"sub": "bob"})) }},
		row("opaque token, revoked", PathAny, func(as *oauthtest.Server) []string {
			tok := as.MintOpaque(nil)
			as.Revoke(tok)
			return bearer(tok)
		}, 401, "token is not active"),
		{Name: "introspection endpoint down", Path: PathAny, Status: 503, RetryAfter: "5",
			Authorization: func(as *oauthtest.Server) []string {
				as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: http.StatusBadGateway})
				return bearer(as.MintOpaque(nil))
			},
			Body: `{"error":"temporarily_unavailable","error_description":"authorization server unavailable, retry later"}`},
		{Name: "key set unreachable for a new key", Path: PathAny, Status: 503, RetryAfter: "5",
			Authorization: func(as *oauthtest.Server) []string {
				as.RotateKey("RS256")
				as.SetFault(oauthtest.EndpointJWKS, &oauthtest.Fault{Status: http.StatusInternalServerError})
				return bearer(as.Mint(nil))
			},
			Body: `{"error":"temporarily_unavailable","error_description":"authorization server unavailable, retry later"}`},
		{Name: "two Authorization headers", Path: PathAny, Status: 400,
			Authorization: func(as *oauthtest.Server) []string {
				tok := "Bearer " + as.Mint(nil)
				return []string{tok, tok}
			},
			Challenge: `Bearer realm="{realm}", error="invalid_request", error_description="more than one Authorization header", resource_metadata="{rm}"`,
			Body:      `{"error":"invalid_request","error_description":"more than one Authorization header"}`},
	}
	return rows
}

// Run sends every row of Rows to the handler build returns, each row
// against a fresh authorization server and Guard, and fails t on any
// difference. Rows run as subtests.
func Run(t *testing.T, build Build) {
	for _, row := range Rows() {
		t.Run(row.Name, func(t *testing.T) {
			as := oauthtest.NewServer(oauthtest.Options{})
			defer as.Close()
			as.RegisterClient(rsClient, rsSecret)
			g, err := tokenguard.New(context.Background(), tokenguard.Config{
				ResourceMetadataURL: as.ResourceMetadataURL(),
				InsecureAllowHTTP:   true,
				Introspection:       tokenguard.IntrospectionConfig{ClientID: rsClient, ClientSecret: rsSecret},
			})
			if err != nil {
				t.Fatalf("tokenguard.New: %v", err)
			}
			defer g.Close()
			h := build(t, Setup{Guard: g, Probe: Probe})
			check(t, row, g, as, h)
		})
	}
}

func check(t *testing.T, row Row, g *tokenguard.Guard, as *oauthtest.Server, h http.Handler) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, row.Path, nil)
	for _, v := range row.Authorization(as) {
		r.Header.Add("Authorization", v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := w.Result()
	body, _ := io.ReadAll(res.Body)

	if res.StatusCode != row.Status {
		t.Errorf("status %d, want %d (body %s)", res.StatusCode, row.Status, body)
	}
	want := strings.NewReplacer("{realm}", g.Resource(), "{rm}", g.ResourceMetadataURL()).Replace(row.Challenge)
	if got := res.Header.Get("WWW-Authenticate"); got != want {
		t.Errorf("WWW-Authenticate\n got %q\nwant %q", got, want)
	}
	if got := res.Header.Get("Retry-After"); got != row.RetryAfter {
		t.Errorf("Retry-After %q, want %q", got, row.RetryAfter)
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
