package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// stdRoutes is the demo API on a ServeMux, as the nethttp example has it.
func stdRoutes(g *tokenguard.Guard, orders *Orders) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	mux.Handle("GET /orders", g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := tokenguard.PrincipalFrom(r.Context())
		_ = json.NewEncoder(w).Encode(OrderList{Subject: p.Subject, Orders: orders.List(p.Subject)})
	})))
	mux.Handle("POST /orders", g.RequireScopes(ScopeWrite)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := tokenguard.PrincipalFrom(r.Context())
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(orders.Create(p.Subject))
	})))
	return mux
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestParse(t *testing.T) {
	p := Program{Name: "demo"}
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		wantOK   bool
		want     options
		stderr   string // substring
	}{
		{name: "defaults: self-check", wantOK: true, want: options{addr: DefaultAddr}},
		{name: "flag", args: []string{"-discovery", "https://api.example.com/.well-known/oauth-protected-resource", "-addr", ":9000"}, wantOK: true,
			want: options{discovery: "https://api.example.com/.well-known/oauth-protected-resource", addr: ":9000"}},
		{name: "env", env: map[string]string{EnvResourceMetadataURL: "https://a.example/m", EnvClientID: "id", EnvClientSecret: "s"}, wantOK: true,
			want: options{discovery: "https://a.example/m", addr: DefaultAddr, clientID: "id", clientSecret: "s"}},
		{name: "flag wins over env", args: []string{"-discovery", "https://b.example/m"}, env: map[string]string{EnvResourceMetadataURL: "https://a.example/m"}, wantOK: true,
			want: options{discovery: "https://b.example/m", addr: DefaultAddr}},
		{name: "empty flag wins over env", args: []string{"-discovery="}, env: map[string]string{EnvResourceMetadataURL: "https://a.example/m"}, wantOK: true,
			want: options{addr: DefaultAddr}},
		{name: "help", args: []string{"-h"}, wantCode: ExitOK, stderr: EnvClientSecret},
		{name: "unknown flag", args: []string{"-nope"}, wantCode: ExitUsage, stderr: "-nope"},
		{name: "stray argument", args: []string{"serve"}, wantCode: ExitUsage, stderr: "unexpected arguments"},
		{name: "addr without discovery", args: []string{"-addr", ":9000"}, wantCode: ExitUsage, stderr: "-addr applies only with -discovery"},
		{name: "insecure-http without discovery", args: []string{"-insecure-http"}, wantCode: ExitUsage, stderr: "-insecure-http applies only"},
		{name: "secret without id", env: map[string]string{EnvResourceMetadataURL: "https://a.example/m", EnvClientSecret: "s"}, wantCode: ExitUsage, stderr: EnvClientID + " is not"},
		{name: "credentials unused by the self-check", env: map[string]string{EnvClientSecret: "s"}, wantOK: true,
			want: options{addr: DefaultAddr, clientSecret: "s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got, code, ok := parse(p, tc.args, env(tc.env), &stderr)
			if ok != tc.wantOK || (!ok && code != tc.wantCode) {
				t.Fatalf("parse = code %d, ok %v; want code %d, ok %v\n%s", code, ok, tc.wantCode, tc.wantOK, stderr.String())
			}
			if ok && got != tc.want {
				t.Errorf("options = %+v, want %+v", got, tc.want)
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, stderr.String())
			}
		})
	}
}

func TestSelfCheckPasses(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Run(t.Context(), Program{Name: "std", Routes: stdRoutes}, nil, env(nil), &stdout, &stderr); code != ExitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}

// The self-check must catch an API that protects too little, or hands its
// handlers the wrong caller.
func TestSelfCheckCatchesWrongOutcomes(t *testing.T) {
	tests := []struct {
		name   string
		routes Routes
		want   []string
	}{
		{
			name: "no protection",
			routes: func(g *tokenguard.Guard, orders *Orders) http.Handler {
				mux := http.NewServeMux()
				mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
					_ = json.NewEncoder(w).Encode(OrderList{Subject: demoClient})
				})
				return mux
			},
			want: []string{"no token GET /orders -> 200 FAIL: want status 401", "missing scope POST /orders -> 200 FAIL: want status 403", "4 of 6 outcomes were wrong"},
		},
		{
			name: "scope not required",
			routes: func(g *tokenguard.Guard, orders *Orders) http.Handler {
				return g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/healthz" {
						return
					}
					p, _ := tokenguard.PrincipalFrom(r.Context())
					_ = json.NewEncoder(w).Encode(OrderList{Subject: p.Subject})
				}))
			},
			want: []string{"public GET /healthz -> 401 FAIL: want status 200", "missing scope POST /orders -> 200 FAIL", "3 of 6 outcomes were wrong"},
		},
		{
			name: "wrong caller",
			routes: func(g *tokenguard.Guard, orders *Orders) http.Handler {
				mux := http.NewServeMux()
				mux.Handle("/", stdRoutes(g, orders))
				mux.Handle("GET /orders", g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_ = json.NewEncoder(w).Encode(OrderList{Subject: "somebody"})
				})))
				return mux
			},
			want: []string{`valid token GET /orders -> 200 FAIL: handler saw caller "somebody", want "demo-client"`, "2 of 6 outcomes were wrong"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Run(t.Context(), Program{Name: "bad", Routes: tc.routes}, nil, env(nil), &stdout, &stderr); code != ExitFail {
				t.Fatalf("exit %d, want %d\n%s%s", code, ExitFail, stdout.String(), stderr.String())
			}
			out := squeeze(stdout.String())
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q\n%s", w, stdout.String())
				}
			}
		})
	}
}

// squeeze turns every run of spaces into one, so that wanted lines need
// not repeat the column padding.
func squeeze(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

// lockedBuffer is a bytes.Buffer the test reads while Run writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestDiscoveryModeServesUntilCancelled(t *testing.T) {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	as.RegisterClient("api", "api-secret")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, Program{Name: "std", Routes: stdRoutes}, []string{"-insecure-http", "-addr", "127.0.0.1:0"},
			env(map[string]string{EnvResourceMetadataURL: as.ResourceMetadataURL(), EnvClientID: "api", EnvClientSecret: "api-secret"}),
			pw, &stderr)
		pw.Close()
	}()

	// Find the address in "serving on http://ADDR (...)".
	var base string
	lines := bufio.NewScanner(pr)
	for lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "serving on "); ok {
			base, _, _ = strings.Cut(rest, " ")
			break
		}
	}
	if base == "" {
		t.Fatalf("no serving line; exit %d\n%s", <-done, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	get := func(token string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"/orders", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate") + string(body)
	}
	if code, _ := get(as.Mint(oauthtest.Claims{"sub": "alice"})); code != 200 {
		t.Errorf("JWT: status %d, want 200", code)
	}
	// Opaque tokens work only with the credentials from the environment.
	if code, body := get(as.MintOpaque(oauthtest.Claims{"sub": "bob"})); code != 200 || !strings.Contains(body, `"subject":"bob"`) {
		t.Errorf("opaque: status %d %s, want 200 for bob", code, body)
	}
	if code, challenge := get(""); code != 401 || !strings.Contains(challenge, as.ResourceMetadataURL()) {
		t.Errorf("no token: status %d, challenge %q", code, challenge)
	}

	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Errorf("exit %d after interrupt, want 0\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestDiscoveryModeStartFailures(t *testing.T) {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		// Plain HTTP is refused unless asked for: a real server must use TLS.
		{"http without -insecure-http", []string{"-discovery", as.ResourceMetadataURL()}, "https"},
		{"nothing there", []string{"-discovery", as.URL + "/.well-known/oauth-protected-resource/nothing", "-insecure-http"}, "404"},
		{"address in use", []string{"-discovery", as.ResourceMetadataURL(), "-insecure-http", "-addr", strings.TrimPrefix(as.URL, "http://")}, "address already in use"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Run(t.Context(), Program{Name: "std", Routes: stdRoutes}, tc.args, env(nil), &stdout, &stderr); code != ExitFail {
				t.Fatalf("exit %d, want %d\n%s", code, ExitFail, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, stderr.String())
			}
		})
	}
}

func TestOrders(t *testing.T) {
	var o Orders
	if got := o.List("alice"); got == nil || len(got) != 0 {
		t.Fatalf("List on empty = %#v, want []", got)
	}
	a := o.Create("alice")
	o.Create("bob")
	b := o.Create("alice")
	if a.ID == b.ID {
		t.Errorf("two orders with id %d", a.ID)
	}
	if got := o.List("alice"); len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("List(alice) = %v, want [%v %v]", got, a, b)
	}
}
