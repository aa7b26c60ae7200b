package main

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// failTransport fails the test on any outbound request: the paths tested
// here must stop before the network.
type failTransport struct{ t *testing.T }

func (f failTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("network access: %s %s", r.Method, r.URL)
	return nil, errors.New("no network in tests")
}

func noNetwork(t *testing.T) {
	saved := http.DefaultTransport
	http.DefaultTransport = failTransport{t}
	t.Cleanup(func() { http.DefaultTransport = saved })
}

func TestWithoutEnvironmentSaysWhatToSet(t *testing.T) {
	noNetwork(t)
	vars := []string{"TELNYX_CLIENT_ID", "TELNYX_CLIENT_SECRET", "TELNYX_RESOURCE"}
	tests := []struct {
		name        string
		env         map[string]string
		wantMissing string
	}{
		{"none set", nil, "set TELNYX_CLIENT_ID, TELNYX_CLIENT_SECRET, TELNYX_RESOURCE"},
		{"only the client", map[string]string{"TELNYX_CLIENT_ID": "id", "TELNYX_CLIENT_SECRET": "secret"}, "set TELNYX_RESOURCE\n"},
		{"no secret", map[string]string{"TELNYX_CLIENT_ID": "id", "TELNYX_RESOURCE": "https://api.example.com"}, "set TELNYX_CLIENT_SECRET\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), nil, func(k string) string { return tc.env[k] }, &stdout, &stderr)
			if code != 2 {
				t.Fatalf("exit %d, want 2\n%s", code, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			msg := stderr.String()
			for _, want := range append(vars, tc.wantMissing, "https://api.telnyx.com/.well-known/oauth-authorization-server",
				"audience (aud)", "introspection") {
				if !strings.Contains(msg, want) {
					t.Errorf("message lacks %q:\n%s", want, msg)
				}
			}
		})
	}
}

func TestUsage(t *testing.T) {
	noNetwork(t)
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"-h"}, 0},
		{[]string{"-nope"}, 2},
		{[]string{"extra"}, 2},
	}
	for _, tc := range tests {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), tc.args, func(string) string { return "set" }, &stdout, &stderr); code != tc.code {
			t.Errorf("run(%q) = %d, want %d\n%s", tc.args, code, tc.code, stderr.String())
		}
	}
}

func TestConfig(t *testing.T) {
	env := map[string]string{"TELNYX_CLIENT_ID": "id", "TELNYX_CLIENT_SECRET": "secret", "TELNYX_RESOURCE": "https://api.example.com"}
	cfg := config(func(k string) string { return env[k] })
	if cfg.Issuer != "https://api.telnyx.com" || cfg.Resource != "https://api.example.com" ||
		cfg.Introspection.ClientID != "id" || cfg.Introspection.ClientSecret != "secret" {
		t.Errorf("config = %+v", cfg)
	}
	// Production: nothing relaxed.
	if cfg.InsecureAllowHTTP || cfg.InsecureSkipAudienceCheck || cfg.ResourceMetadataURL != "" || cfg.JWKSURL != "" {
		t.Errorf("config relaxes a check or skips discovery: %+v", cfg)
	}
}
