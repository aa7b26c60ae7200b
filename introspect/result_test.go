package introspect_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard/introspect"
)

// ts formats a time as a JSON NumericDate.
func ts(d time.Duration) string { return fmt.Sprint(now.Add(d).Unix()) }

func TestActiveAllFields(t *testing.T) {
	body := `{"active":true,"scope":"read  write admin","client_id":"app-1","username":"alice",` +
		`"token_type":"Bearer","sub":"user-42","iss":"https://as.example","jti":"tid-9",` +
		`"aud":["https://api.example","https://other.example"],"exp":` + ts(time.Hour) +
		`,"iat":` + ts(-time.Minute) + `.5,"nbf":` + ts(-time.Minute) + `,"ext":{"tenant":"t-1"}}`
	srv := server(t, jsonReply(200, "  "+body+"\n"))
	c := newClient(t, introspect.Config{
		Endpoint: srv.URL, TrustedIssuers: []string{"https://as.example"}, Audiences: []string{"https://api.example"},
	})
	r, err := call(t, c)
	if err != nil {
		t.Fatal(err)
	}
	want := introspect.Result{
		Active: true, Scope: []string{"read", "write", "admin"}, ClientID: "app-1", Username: "alice",
		TokenType: "Bearer", Subject: "user-42", Issuer: "https://as.example", TokenID: "tid-9",
		Audience: []string{"https://api.example", "https://other.example"},
		Expiry:   now.Add(time.Hour), IssuedAt: now.Add(-time.Minute + 500*time.Millisecond), NotBefore: now.Add(-time.Minute),
	}
	got := *r
	got.Raw = nil
	if fmt.Sprint(got) != fmt.Sprint(want) || !got.Expiry.Equal(want.Expiry) || !got.IssuedAt.Equal(want.IssuedAt) || !got.NotBefore.Equal(want.NotBefore) {
		t.Errorf("result\n got  %+v\n want %+v", got, want)
	}
	if string(r.Raw) != body {
		t.Errorf("Raw = %s, want the response object %s", r.Raw, body)
	}
}

func TestResponses(t *testing.T) {
	exp := `,"exp":` + ts(time.Hour)
	tests := []struct {
		name   string
		body   string
		ctype  string // "" means application/json; "-" means none
		cfg    introspect.Config
		want   string // "active", "inactive", "token:<reason>", "bad"
		verify func(t *testing.T, r *introspect.Result)
	}{
		{name: "inactive", body: `{"active":false}`, want: "inactive"},
		{name: "inactive with details is not validated", body: `{"active":false,"exp":1,"iss":"https://evil.example","token_type":"refresh_token"}`,
			cfg: introspect.Config{TrustedIssuers: []string{"https://as.example"}}, want: "inactive",
			verify: func(t *testing.T, r *introspect.Result) {
				if r.Issuer != "" || !r.Expiry.IsZero() || len(r.Raw) == 0 {
					t.Errorf("inactive result %+v: want details empty and Raw kept", r)
				}
			}},
		{name: "minimal active", body: `{"active":true}`, want: "active"},
		{name: "charset parameter", body: `{"active":true}`, ctype: "application/json; charset=utf-8", want: "active"},
		{name: "+json media type", body: `{"active":true}`, ctype: "application/token-introspection+json", want: "active"},
		{name: "no content type", body: `{"active":true}`, ctype: "-", want: "active"},
		{name: "nulls are absent", body: `{"active":true,"exp":null,"aud":null,"scope":null,"iss":null}`,
			cfg: introspect.Config{Audiences: []string{"https://api.example"}, TrustedIssuers: []string{"https://as.example"}}, want: "active"},
		{name: "fractional exp", body: `{"active":true,"exp":` + ts(time.Hour) + `.25}`, want: "active",
			verify: func(t *testing.T, r *introspect.Result) {
				if want := now.Add(time.Hour + 250*time.Millisecond); !r.Expiry.Equal(want) {
					t.Errorf("Expiry = %v, want %v", r.Expiry, want)
				}
			}},
		{name: "member names are exact-case", body: `{"active":true,"EXP":1,"Scope":"admin","ISS":"https://evil.example"}`,
			cfg: introspect.Config{TrustedIssuers: []string{"https://as.example"}}, want: "active",
			verify: func(t *testing.T, r *introspect.Result) {
				if !r.Expiry.IsZero() || r.Scope != nil || r.Issuer != "" {
					t.Errorf("wrong-case members were read: %+v", r)
				}
			}},

		{name: "expired", body: `{"active":true,"exp":` + ts(-time.Second) + `}`, want: "token:token expired"},
		{name: "exp is now", body: `{"active":true,"exp":` + ts(0) + `}`, want: "token:token expired"},
		{name: "nbf in the future", body: `{"active":true,"nbf":` + ts(time.Minute) + exp + `}`, want: "token:token not yet valid"},
		{name: "nbf is now", body: `{"active":true,"nbf":` + ts(0) + exp + `}`, want: "active"},
		{name: "issuer untrusted", body: `{"active":true,"iss":"https://evil.example"` + exp + `}`,
			cfg: introspect.Config{TrustedIssuers: []string{"https://as.example"}}, want: "token:untrusted issuer"},
		{name: "issuer trusted", body: `{"active":true,"iss":"https://as2.example"` + exp + `}`,
			cfg: introspect.Config{TrustedIssuers: []string{"https://as.example", "https://as2.example"}}, want: "active"},
		{name: "issuer absent", body: `{"active":true` + exp + `}`,
			cfg: introspect.Config{TrustedIssuers: []string{"https://as.example"}}, want: "active"},
		{name: "issuer unchecked without TrustedIssuers", body: `{"active":true,"iss":"https://any.example"}`, want: "active"},
		{name: "aud string mismatch", body: `{"active":true,"aud":"https://other.example"}`,
			cfg: introspect.Config{Audiences: []string{"https://api.example"}}, want: "token:token not meant for this resource"},
		{name: "aud string match", body: `{"active":true,"aud":"https://api.example"}`,
			cfg: introspect.Config{Audiences: []string{"https://api.example"}}, want: "active",
			verify: func(t *testing.T, r *introspect.Result) {
				if !slices.Equal(r.Audience, []string{"https://api.example"}) {
					t.Errorf("Audience = %q", r.Audience)
				}
			}},
		{name: "aud array contains", body: `{"active":true,"aud":["https://other.example","https://api.example"]}`,
			cfg: introspect.Config{Audiences: []string{"https://api.example"}}, want: "active"},
		{name: "aud array lacks", body: `{"active":true,"aud":["https://other.example","https://API.example"]}`,
			cfg: introspect.Config{Audiences: []string{"https://api.example"}}, want: "token:token not meant for this resource"},
		{name: "aud empty array", body: `{"active":true,"aud":[]}`,
			cfg: introspect.Config{Audiences: []string{"https://api.example"}}, want: "token:token not meant for this resource"},
		{name: "aud matches the second of several", body: `{"active":true,"aud":["https://other.example","https://b.example"]}`,
			cfg: introspect.Config{Audiences: []string{"https://api.example", "https://b.example"}}, want: "active"},
		{name: "aud matches none of several", body: `{"active":true,"aud":"https://c.example"}`,
			cfg: introspect.Config{Audiences: []string{"https://api.example", "https://b.example"}}, want: "token:token not meant for this resource"},
		{name: "aud absent, required", body: `{"active":true}`,
			cfg: introspect.Config{Audiences: []string{"https://api.example"}, RequireAudience: true}, want: "token:token not meant for this resource"},
		{name: "aud empty array, required", body: `{"active":true,"aud":[]}`,
			cfg: introspect.Config{RequireAudience: true}, want: "token:token not meant for this resource"},
		{name: "aud present, required", body: `{"active":true,"aud":"https://api.example"}`,
			cfg: introspect.Config{Audiences: []string{"https://api.example"}, RequireAudience: true}, want: "active"},
		{name: "aud absent is accepted", body: `{"active":true}`,
			cfg: introspect.Config{Audiences: []string{"https://api.example"}}, want: "active"},
		{name: "refresh token", body: `{"active":true,"token_type":"refresh_token"` + exp + `}`, want: "token:refresh token not accepted"},
		{name: "refresh token by token_use (Hydra, fosite)", body: `{"active":true,"token_type":"bearer","token_use":"refresh_token"` + exp + `}`, want: "token:not an access token"},
		{name: "token_use of an ID token", body: `{"active":true,"token_use":"id_token"` + exp + `}`, want: "token:not an access token"},
		{name: "token_use access_token", body: `{"active":true,"token_type":"bearer","token_use":"access_token"` + exp + `}`, want: "active"},
		{name: "token_use not a string", body: `{"active":true,"token_use":1}`, want: "bad"},
		{name: "nbf just ahead, within leeway", body: `{"active":true,"nbf":` + ts(2*time.Second) + exp + `}`,
			cfg: introspect.Config{Leeway: 5 * time.Second}, want: "active"},
		{name: "nbf ahead, beyond leeway", body: `{"active":true,"nbf":` + ts(10*time.Second) + exp + `}`,
			cfg: introspect.Config{Leeway: 5 * time.Second}, want: "token:token not yet valid"},
		{name: "exp just past, within leeway", body: `{"active":true,"exp":` + ts(-2*time.Second) + `}`,
			cfg: introspect.Config{Leeway: 5 * time.Second}, want: "active"},
		{name: "exp past, beyond leeway", body: `{"active":true,"exp":` + ts(-10*time.Second) + `}`,
			cfg: introspect.Config{Leeway: 5 * time.Second}, want: "token:token expired"},
		{name: "refresh token, other case", body: `{"active":true,"token_type":"Refresh_Token"` + exp + `}`, want: "token:refresh token not accepted"},

		{name: "member names equal under case folding", body: `{"active":true,"workspace":"a","work\u017fpace":"b"}`, want: "bad"},
		{name: "folded duplicate nested", body: `{"active":true,"ext":{"role":"user","ROLE":"admin"}}`, want: "bad"},
		{name: "same name in sibling objects", body: `{"active":true,"a":{"x":1},"b":{"x":2}}`, want: "active"},
		{name: "a number encoding/json cannot decode", body: `{"active":true,"x":1e700}`, want: "bad"},
		{name: "active missing", body: `{"scope":"read"}`, want: "bad"},
		{name: "active is a string", body: `{"active":"true"}`, want: "bad"},
		{name: "active wrong case", body: `{"ACTIVE":true}`, want: "bad"},
		{name: "active is a number", body: `{"active":1}`, want: "bad"},
		{name: "active is null", body: `{"active":null}`, want: "bad"},
		{name: "active twice", body: `{"active":false,"active":true}`, want: "bad"},
		{name: "trailing data", body: `{"active":true} garbage`, want: "bad"},
		{name: "second object", body: `{"active":true}{"active":false}`, want: "bad"},
		{name: "not an object", body: `[{"active":true}]`, want: "bad"},
		{name: "truncated", body: `{"active":true,"scope":"re`, want: "bad"},
		{name: "empty body", body: ``, want: "bad"},
		{name: "exp is a string", body: `{"active":true,"exp":"` + ts(time.Hour) + `"}`, want: "bad"},
		{name: "scope is an array", body: `{"active":true,"scope":["read"]}`, want: "bad"},
		{name: "aud is a number", body: `{"active":true,"aud":7}`, want: "bad"},
		{name: "sub is an object", body: `{"active":true,"sub":{}}`, want: "bad"},
		{name: "HTML with status 200", body: `<html><body>{"active":true}</body></html>`, ctype: "text/html", want: "bad"},
		{name: "JSON body labelled HTML", body: `{"active":true}`, ctype: "text/html; charset=utf-8", want: "bad"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := server(t, func(w http.ResponseWriter, r *http.Request) {
				switch tc.ctype {
				case "":
					w.Header().Set("Content-Type", "application/json")
				case "-":
					w.Header()["Content-Type"] = nil // no sniffing
				default:
					w.Header().Set("Content-Type", tc.ctype)
				}
				fmt.Fprint(w, tc.body)
			})
			cfg := tc.cfg
			cfg.Endpoint = srv.URL
			r, err := call(t, newClient(t, cfg))
			switch {
			case tc.want == "active" || tc.want == "inactive":
				if err != nil {
					t.Fatalf("err = %v, want %s", err, tc.want)
				}
				if r.Active != (tc.want == "active") {
					t.Fatalf("Active = %v, want %s", r.Active, tc.want)
				}
			case strings.HasPrefix(tc.want, "token:"):
				te := wantTokenError(t, err)
				if want := strings.TrimPrefix(tc.want, "token:"); te.Reason != want {
					t.Errorf("Reason = %q, want %q (%v)", te.Reason, want, err)
				}
			case tc.want == "bad":
				ue := wantUpstream(t, err)
				if !errors.Is(err, introspect.ErrBadResponse) {
					t.Errorf("err = %v, want ErrBadResponse", err)
				}
				if ue.StatusCode != 200 {
					t.Errorf("StatusCode = %d, want 200", ue.StatusCode)
				}
			default:
				t.Fatalf("bad test: want %q", tc.want)
			}
			if tc.verify != nil {
				tc.verify(t, r)
			}
		})
	}
}

func TestEmptyToken(t *testing.T) {
	var n counter
	srv := server(t, func(w http.ResponseWriter, r *http.Request) { n.record(r); jsonReply(200, `{"active":true}`)(w, r) })
	c := newClient(t, introspect.Config{Endpoint: srv.URL})
	_, err := c.Introspect(t.Context(), "")
	wantTokenError(t, err)
	if n.n.Load() != 0 {
		t.Errorf("an empty token reached the endpoint")
	}
}
