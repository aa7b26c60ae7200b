package tgfiber_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v3"

	tgfiber "github.com/tokenguard/tokenguard/adapters/fiber"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Holds: header fields that fasthttp reads differently from net/http
// never smuggle a token past the core. A name with a blank before the
// colon (net/http answers 400) is no Authorization field, so the request
// has no token; two Authorization fields that differ in case are two,
// with or without fasthttp's name normalising; a folded continuation line
// is part of the value, not a field of its own.
func TestReviewHeaderSmuggling(t *testing.T) {
	as, g := newGuard(t)
	tok := as.Mint(oauthtest.Claims{"sub": "alice"})
	noToken := `Bearer realm="` + g.Resource() + `", resource_metadata="` + g.ResourceMetadataURL() + `"`
	for _, normalise := range []bool{true, false} {
		app := fiber.New(fiber.Config{DisableHeaderNormalizing: !normalise})
		app.Get("/guarded", tgfiber.New(g), subject)
		base := serve(t, app, nil)
		for _, c := range []struct {
			fields string
			status int
			chal   string
		}{
			{"Authorization : Bearer " + tok, 401, noToken},
			{"authorization: Bearer " + tok + "\r\nAUTHORIZATION: Bearer " + tok, 400, challenge(g, "invalid_request", "more than one Authorization header")},
			{"Authorization: Bearer " + tok + "\r\n Authorization: Bearer " + tok, 400, challenge(g, "invalid_request", "token has characters a bearer token cannot have")},
			{"Authorization:Bearer " + tok, 200, ""},
		} {
			conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(conn, "GET /guarded HTTP/1.1\r\nHost: api.example\r\n"+c.fields+"\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			conn.Close()
			what := strings.ReplaceAll(c.fields, tok, "<token>")
			if res.StatusCode != c.status || res.Header.Get("WWW-Authenticate") != c.chal {
				t.Errorf("normalising %v, %q: %d %q, want %d %q", normalise, what, res.StatusCode, res.Header.Get("WWW-Authenticate"), c.status, c.chal)
			}
			if c.status == 200 && string(body) != "alice" {
				t.Errorf("normalising %v, %q: body %q", normalise, what, body)
			}
		}
	}
}
