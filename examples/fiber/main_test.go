package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard/oauthtest"
)

func noEnv(string) string { return "" }

// The self-check exits 0 having printed every outcome, each one right.
func TestSelfCheck(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), nil, noEnv, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(stdout.String(), "\n") {
		lines[strings.Join(strings.Fields(l), " ")] = true
	}
	for _, want := range []string{
		"public GET /healthz -> 200 ok",
		"valid token GET /orders -> 200 ok",
		"no token GET /orders -> 401 ok",
		"missing scope POST /orders -> 403 ok",
		"write scope POST /orders -> 201 ok",
		"opaque token GET /orders -> 200 ok",
		"all 6 outcomes as expected",
	} {
		if !lines[want] {
			t.Errorf("output lacks %q\n%s", want, &stdout)
		}
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		code int
		msg  string
	}{
		{[]string{"-h"}, nil, exitOK, "Usage: fiber"},
		{[]string{"-nope"}, nil, exitUsage, "-nope"},
		{[]string{"serve"}, nil, exitUsage, "unexpected arguments"},
		{[]string{"-addr", ":0"}, nil, exitUsage, "only with -discovery"},
		{nil, map[string]string{envDiscovery: "https://a.example/m", envClientSecret: "s"}, exitUsage, envClientID + " is not"},
		{[]string{"-discovery", "http://127.0.0.1:1/.well-known/oauth-protected-resource"}, nil, exitFail, "fiber:"},
	} {
		var stderr bytes.Buffer
		env := func(k string) string { return tc.env[k] }
		if code := run(t.Context(), tc.args, env, io.Discard, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.msg) {
			t.Errorf("%q %v: exit %d, want %d; stderr lacks %q:\n%s", tc.args, tc.env, code, tc.code, tc.msg, &stderr)
		}
	}
}

// lineWriter is an io.Writer that reports the address once the program
// says where it serves.
type lineWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	addr chan string
}

var servingOn = regexp.MustCompile(`serving on (http://\S+)`)

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if m := servingOn.FindStringSubmatch(w.buf.String()); m != nil && w.addr != nil {
		w.addr <- m[1]
		w.addr = nil
	}
	return len(p), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// With -discovery the program builds the Guard from that metadata, serves
// until its context ends, and exits 0: a token of the server passes, none
// gets the challenge naming the metadata, an opaque token is introspected
// with the credentials from the environment.
func TestDiscoveryMode(t *testing.T) {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	as.RegisterClient("orders-api", "s3cret")
	ctx, cancel := context.WithCancel(t.Context())
	serving := make(chan string, 1)
	out := &lineWriter{addr: serving}
	stderr := &lineWriter{} // written by the program's logger while it serves
	env := map[string]string{envClientID: "orders-api", envClientSecret: "s3cret"}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-discovery", as.ResourceMetadataURL(), "-insecure-http", "-addr", "127.0.0.1:0"},
			func(k string) string { return env[k] }, out, stderr)
	}()
	var api string
	select {
	case api = <-serving:
	case code := <-done:
		t.Fatalf("exit %d before serving: %s", code, stderr)
	case <-time.After(10 * time.Second):
		t.Fatal("not serving after 10s")
	}

	for _, tc := range []struct {
		token     string
		status    int
		challenge string
	}{
		{as.Mint(oauthtest.Claims{"sub": "alice"}), 200, ""},
		{as.MintOpaque(oauthtest.Claims{"sub": "bob"}), 200, ""},
		{"", 401, `resource_metadata="` + as.ResourceMetadataURL() + `"`},
	} {
		req, _ := http.NewRequest(http.MethodGet, api+"/orders", nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.status || !strings.Contains(res.Header.Get("WWW-Authenticate"), tc.challenge) {
			t.Errorf("status %d %q, want %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"), tc.status, tc.challenge)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d after shutdown: %s", code, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit 10s after cancel")
	}
}
