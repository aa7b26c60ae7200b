package tgmcp_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"

	tgmcp "github.com/tokenguard/tokenguard/adapters/mcp"
)

// Two trusted issuers whose users share a sub: alice of issuer B must not
// ride the session alice of issuer A opened. The Guard accepts B's token
// (it is valid); the SDK refuses it on A's session with its 403, because
// UserID names the issuer too. Before, UserID was the bare sub, both
// tokens had UserID "alice", and B's token was served on A's session.
func TestAttackSameSubjectOtherIssuer(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	resource := srv.URL + "/mcp"
	a := oauthtest.NewServer(oauthtest.Options{Resource: resource})
	t.Cleanup(a.Close)
	b := oauthtest.NewServer(oauthtest.Options{Resource: resource})
	t.Cleanup(b.Close)
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuer:            a.Issuer,
		Issuers:           []tokenguard.TrustedIssuer{{Issuer: b.Issuer}},
		Resource:          resource,
		InsecureAllowHTTP: true,
	})
	if err != nil {
		t.Fatalf("tokenguard.New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	mux.Handle(g.MetadataPath(), g.MetadataHandler())
	mux.Handle("/mcp", tgmcp.Middleware(g)(streamable(newMCPServer())))

	aliceA := func() string { return a.Mint(oauthtest.Claims{"sub": "alice", "scope": "a"}) }
	aliceB := func() string { return b.Mint(oauthtest.Claims{"sub": "alice", "scope": "b"}) }

	// Both tokens are valid on their own: B's alice opens a session of
	// her own, and her tool sees her issuer.
	csB, _, err := connect(t, resource, aliceB())
	if err != nil {
		t.Fatalf("Connect as alice@B: %v", err)
	}
	if got := callWhoami(t, csB); got.Issuer != b.Issuer || got.ExtraSub != "alice" || got.Subject != "alice" ||
		got.UserID != tgmcp.UserID(b.Issuer, "alice") {
		t.Errorf("alice@B's own session: %+v", got)
	}

	cs, rec, err := connect(t, resource, aliceA())
	if err != nil {
		t.Fatalf("Connect as alice@A: %v", err)
	}
	if got := callWhoami(t, cs); got.Issuer != a.Issuer || got.ExtraSub != "alice" || got.UserID != tgmcp.UserID(a.Issuer, "alice") {
		t.Errorf("alice@A: %+v", got)
	}
	if tgmcp.UserID(a.Issuer, "alice") == tgmcp.UserID(b.Issuer, "alice") {
		t.Error("one UserID for two issuers")
	}

	// The attacker knows alice@A's session id and holds a valid token of
	// alice@B: the Guard lets the request through, the SDK refuses it.
	call := func(token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, resource,
			strings.NewReader(`{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Mcp-Session-Id", cs.ID())
		req.Header.Set("Mcp-Protocol-Version", cs.InitializeResult().ProtocolVersion)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<16))
		return res.StatusCode, string(body)
	}
	if status, body := call(aliceB()); status != http.StatusForbidden || body != "session user mismatch\n" {
		t.Errorf("alice@B on alice@A's session: %d %q, want the SDK's 403 session user mismatch", status, body)
	}
	// alice@A's own request on it, by the same route, is served.
	if status, body := call(aliceA()); status != http.StatusOK || !strings.Contains(body, `\"extra_sub\":\"alice\"`) {
		t.Errorf("alice@A on her session: %d %q", status, body)
	}

	// alice@A, with a new token, carries on in her session.
	rec.setToken(aliceA())
	if got := callWhoami(t, cs); got.Issuer != a.Issuer || got.ExtraSub != "alice" {
		t.Errorf("alice@A after the attempt: %+v", got)
	}

	// The same through the SDK's client: its request with alice@B's token
	// gets the SDK's 403 (no challenge: the Guard accepted the token).
	rec.setToken(aliceB())
	x := refusedCall(t, cs, rec)
	if x.status != http.StatusForbidden || x.sessionID != cs.ID() || x.header.Get("WWW-Authenticate") != "" {
		t.Errorf("alice@B through alice@A's client: %d (session %q, challenge %q), want the SDK's 403",
			x.status, x.sessionID, x.header.Get("WWW-Authenticate"))
	}
}
