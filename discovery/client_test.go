package discovery_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/tokenguard/tokenguard/discovery"
)

func TestRedirects(t *testing.T) {
	plain := newFake(t, false, map[string]route{asPath: {body: asDoc("")}})
	tests := []struct {
		name       string
		target     func(tlsURL string) string
		insecure   bool
		wantErr    error
		errHas     string
		plainHits  int
		wantResult bool
	}{
		{
			name:    "https to http refused",
			target:  func(string) string { return plain.URL + asPath },
			wantErr: discovery.ErrInsecureURL,
			errHas:  "redirect refused",
		},
		{
			name:     "https to http with opt-in reaches the document, which names another issuer",
			target:   func(string) string { return plain.URL + asPath },
			insecure: true,
			wantErr:  discovery.ErrIssuerMismatch,
			// the plain server's document names the plain server as issuer
			plainHits: 1,
		},
		{
			name:       "https to https followed",
			target:     func(tlsURL string) string { return tlsURL + "/moved" },
			wantResult: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(plain.requests())
			var secure *fakeServer
			secure = newFake(t, true, map[string]route{
				asPath: {handler: func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, tc.target("https://"+r.Host), http.StatusFound)
				}},
				"/moved": {body: asDoc("")},
			})
			c := discovery.Client{HTTPClient: secure.Client(), InsecureAllowHTTP: tc.insecure}
			md, err := c.FetchServer(context.Background(), secure.URL)
			if tc.wantResult {
				if err != nil {
					t.Fatalf("FetchServer: %v", err)
				}
				if md.Issuer != secure.URL {
					t.Errorf("Issuer = %q", md.Issuer)
				}
			} else {
				checkErr(t, err, tc.wantErr, tc.errHas)
			}
			if got := len(plain.requests()) - before; got != tc.plainHits {
				t.Errorf("plain server got %d requests, want %d", got, tc.plainHits)
			}
		})
	}
}

func TestRedirectKeepsCallersPolicy(t *testing.T) {
	srv := newFake(t, true, map[string]route{
		asPath: {handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/moved", http.StatusFound)
		}},
		"/moved": {body: asDoc("")},
	})
	errNoRedirects := errors.New("no redirects")
	hc := srv.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return errNoRedirects }
	c := discovery.Client{HTTPClient: hc}
	_, err := c.FetchServer(context.Background(), srv.URL)
	checkErr(t, err, errNoRedirects, "")
	if got := srv.requests(); len(got) != 1 {
		t.Errorf("server got requests %q, want only the first", got)
	}
}

func TestNilClient(t *testing.T) {
	var c *discovery.Client
	_, err := c.FetchServer(context.Background(), "http://127.0.0.1:1")
	checkErr(t, err, discovery.ErrInsecureURL, "")
	_, err = c.FetchResource(context.Background(), "", "http://127.0.0.1:1")
	checkErr(t, err, discovery.ErrInsecureURL, "")
}
