package introspect_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tokenguard/tokenguard/introspect"
)

// A resource server checks opaque tokens at its authorization server and
// maps the outcome to an HTTP answer.
func ExampleClient_Introspect() {
	// A stand-in authorization server: one known token, one client.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, secret, ok := r.BasicAuth(); !ok || id != "resource-server" || secret != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.PostFormValue("token") {
		case "good-token":
			fmt.Fprint(w, `{"active":true,"scope":"read write","client_id":"app","sub":"alice","exp":4102444800}`)
		case "old-token":
			fmt.Fprint(w, `{"active":true,"sub":"bob","exp":946684800}`)
		default:
			fmt.Fprint(w, `{"active":false}`)
		}
	}))
	defer srv.Close()

	newClient := func(secret string) *introspect.Client {
		c, err := introspect.New(introspect.Config{
			Endpoint:             srv.URL + "/oauth/introspect",
			SupportedAuthMethods: []string{"none", "client_secret_basic", "client_secret_post"},
			ClientID:             "resource-server",
			ClientSecret:         secret,
			InsecureAllowHTTP:    true, // the test server is plain HTTP
		})
		if err != nil {
			panic(err)
		}
		return c
	}
	c := newClient("s3cret")
	fmt.Println("auth:", c.AuthMethod())

	// status is how a middleware would answer.
	status := func(r *introspect.Result, err error) int {
		var ue *introspect.UpstreamError
		switch {
		case errors.As(err, &ue):
			return http.StatusServiceUnavailable // plus Retry-After: ue.RetryAfter
		case errors.Is(err, introspect.ErrTokenRejected):
			return http.StatusUnauthorized // invalid_token
		case !r.Active:
			return http.StatusUnauthorized // invalid_token
		}
		return http.StatusOK
	}

	ctx := context.Background()
	r, err := c.Introspect(ctx, "good-token")
	fmt.Println(status(r, err), r.Subject, strings.Join(r.Scope, ","))

	r, err = c.Introspect(ctx, "revoked-token")
	fmt.Println(status(r, err), r.Active)

	r, err = c.Introspect(ctx, "old-token")
	fmt.Println(status(r, err), err)

	r, err = newClient("wrong").Introspect(ctx, "good-token")
	fmt.Println(status(r, err), errors.Is(err, introspect.ErrCredentialsRejected))
	// Output:
	// auth: client_secret_basic
	// 200 alice read,write
	// 401 false
	// 401 introspect: token rejected: token expired (exp 2000-01-01T00:00:00Z)
	// 503 true
}
