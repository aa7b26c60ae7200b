package tgmcp_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"

	tgmcp "github.com/tokenguard/tokenguard/adapters/mcp"
)

// The answers Protect gives an attack body.
const (
	forbidden = iota // 403 insufficient_scope, scope="admin"
	ambiguous        // 400 invalid_request "ambiguous JSON-RPC message"
	sdk              // the SDK's own answer, no challenge
	served           // 200: the SDK served it (admin did not run)
)

// toolAttack is a body that tries to run the admin tool with a token
// that lacks the admin scope: sdkRuns tells whether the SDK alone, with
// no Protect in front, runs admin (so the body is a real attempt, not
// only a malformed one), want what Protect answers.
type toolAttack struct {
	name    string
	body    string
	sdkRuns bool
	want    int
}

// toolAttacks are the attack bodies, for the table and as fuzz seeds.
func toolAttacks() []toolAttack {
	id := 0
	call := func(name string) string {
		id++ // a batch of two calls with one id has the SDK answer the first only
		return `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{"name":"` + name + `"}}`
	}
	return []toolAttack{
		// The plain call, and the same in forms every JSON decoder reads
		// alike.
		{"plain call", call("admin"), true, forbidden},
		{"JSON white space around it", " \t\r\n" + call("admin") + " \t\r\n", true, forbidden},
		{"escaped keys and values", `{"jsonrpc":"2.0","id":1,"m\u0065thod":"tools\/call","params":{"n\u0061me":"\u0061dmin"}}`, true, forbidden},
		{"keys reordered, arguments", `{"params":{"arguments":{},"name":"admin"},"method":"tools/call","id":"x","jsonrpc":"2.0"}`, true, forbidden},
		{"notification form", `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"admin"}}`, false, forbidden},
		{"method in another case", `{"jsonrpc":"2.0","id":1,"method":"TOOLS/CALL","params":{"name":"admin"}}`, false, forbidden},
		{"batch", "[" + call("safe") + "," + call("admin") + "]", true, forbidden},
		{"batch, white space", " [ " + call("admin") + " ] ", true, forbidden},
		{"batch with junk elements", `[1,"x",null,` + call("admin") + "]", false, forbidden},

		// Duplicate keys: the SDK takes the last.
		{"params twice", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe"},"params":{"name":"admin"}}`, true, ambiguous},
		{"name twice", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","name":"admin"}}`, true, ambiguous},
		{"method twice", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"name":"admin"},"method":"tools/call"}`, true, ambiguous},
		{"method twice, once escaped", `{"jsonrpc":"2.0","id":1,"method":"ping","m\u0065thod":"tools/call","params":{"name":"admin"}}`, true, ambiguous},
		{"name twice, once escaped", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","n\u0061me":"admin"}}`, true, ambiguous},
		{"params twice in a batch", `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe"},"params":{"name":"admin"}}]`, true, ambiguous},
		// Keys in another case: ignored by the SDK, taken by a
		// case-insensitive decoder such as encoding/json's.
		{"Method", `{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"admin"}}`, false, ambiguous},
		{"method and Method", `{"jsonrpc":"2.0","id":1,"method":"tools/call","Method":"ping","params":{"name":"admin"}}`, true, ambiguous},
		{"Params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin"},"Params":{"name":"safe"}}`, true, ambiguous},
		{"params with a long s", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin"},"paramſ":{"name":"safe"}}`, true, ambiguous},
		{"NAME", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin","NAME":"safe"}}`, true, ambiguous},
		// Data after the message: the SDK reads the first value only.
		{"garbage after", call("admin") + " garbage", true, ambiguous},
		{"a second message after", call("admin") + call("safe"), true, ambiguous},
		{"a safe call, then admin", call("safe") + call("admin"), false, ambiguous},
		{"a brace after", call("admin") + "}", true, ambiguous},
		{"a bracket after", call("admin") + "]", true, ambiguous},
		{"NUL after", call("admin") + "\x00", true, ambiguous},
		{"garbage after a batch", "[" + call("admin") + "] garbage", true, ambiguous},
		{"a batch after a batch", "[" + call("safe") + "][" + call("admin") + "]", false, ambiguous},
		// Bytes before the message.
		{"byte order mark", "\xef\xbb\xbf" + call("admin"), false, ambiguous},
		{"vertical tab", "\v" + call("admin"), false, ambiguous},
		{"no-break space", "\u00a0" + call("admin"), false, ambiguous},
		// A name or params that is not what a tools/call has.
		{"invalid UTF-8 in the name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"adm` + "\xff" + `in"}}`, false, ambiguous},
		{"name an array", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["admin"]}}`, false, ambiguous},
		{"params a string", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"{\"name\":\"admin\"}"}`, false, ambiguous},

		// What the SDK refuses on its own goes on to it, and it answers.
		{"truncated", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin"}`, false, sdk},
		{"empty", "", false, sdk},
		{"trailing comma", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin"},}`, false, sdk},
		{"comment", `{"jsonrpc":"2.0","id":1,"method":"tools/call",/**/"params":{"name":"admin"}}`, false, sdk},
		{"single quotes", `{'jsonrpc':'2.0','id':1,'method':'tools/call','params':{'name':'admin'}}`, false, sdk},
		{"params twice, not JSON-RPC 2.0", `{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"safe"},"params":{"name":"admin"}}`, false, sdk},
		{"method with a NUL", `{"jsonrpc":"2.0","id":1,"method":"tools/call\u0000","params":{"name":"admin"}}`, false, sdk},
		{"method not a string", `{"jsonrpc":"2.0","id":1,"method":["tools/call"],"params":{"name":"admin"}}`, false, sdk},

		// What names no tool with a requirement is served.
		{"the name in another case", call("ADMIN"), false, served},
		{"the name with a NUL", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin\u0000"}}`, false, served},
		{"admin only as an argument", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","arguments":{"name":"admin"}}}`, false, served},
		{"tools/list", `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"name":"admin"}}`, false, served},
	}

}

// The attack bodies sent to real SDK handlers (stateless, and a stateful
// session of a 2025-03-26 client, the SDK versions that accept batches).
// Each goes twice: to the SDK alone, to check what the SDK makes of it
// (sdkRuns), and through Protect, where admin must never run and the
// answer must be want: the core's 403 for admin, the 400 for an
// ambiguous body, or the SDK's own answer when the SDK refuses the body
// on its own.
func TestAttackToolCallBypass(t *testing.T) {
	e := newEnv(t, tokenguard.Config{})
	tok := e.as.Mint(oauthtest.Claims{"sub": "mallory", "scope": "profile"})
	type target struct {
		name    string
		ran     *ranLog
		url     string
		headers []string
	}
	var targets []target
	for _, stateless := range []bool{true, false} {
		for _, guarded := range []bool{false, true} {
			log := new(ranLog)
			server := newToolServer(log, "admin", "safe")
			var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
				&mcp.StreamableHTTPOptions{Stateless: stateless, JSONResponse: true})
			path, name := "/sdk", "SDK alone"
			if guarded {
				h = tgmcp.Protect(e.g, tgmcp.Options{Tools: adminOnly})(h)
				path, name = "/mcp", "Protect"
			}
			mode := "stateful"
			if stateless {
				mode = "stateless"
			}
			path += "/" + mode
			e.mux.Handle(path, h)
			tg := target{name: name + ", " + mode, ran: log, url: e.endpoint(path)}
			if stateless {
				tg.headers = []string{"Mcp-Protocol-Version", "2025-03-26"}
			} else {
				tg.headers = rawSession(t, tg.url, tok)
			}
			targets = append(targets, tg)
		}
	}

	for _, tc := range toolAttacks() {
		t.Run(tc.name, func(t *testing.T) {
			for _, tg := range targets {
				a := postRaw(t, tg.url, tok, tc.body, tg.headers...)
				ran := tg.ran.take()
				runsAdmin := slices.Contains(ran, "admin")
				if strings.HasPrefix(tg.name, "SDK alone") {
					if runsAdmin != tc.sdkRuns {
						t.Errorf("%s: admin ran %v, want %v (%d %q): the SDK reads this body differently now; see toolcalls.go", tg.name, runsAdmin, tc.sdkRuns, a.status, a.body)
					}
					continue
				}
				if runsAdmin {
					t.Errorf("%s: BYPASS: admin ran (%d %q)", tg.name, a.status, a.body)
				}
				challenge := a.header.Get("WWW-Authenticate")
				switch tc.want {
				case forbidden:
					if a.status != http.StatusForbidden || challenge != e.insufficient("admin") || len(ran) != 0 {
						t.Errorf("%s: %d %s, ran %v; want 403 %s", tg.name, a.status, challenge, ran, e.insufficient("admin"))
					}
				case ambiguous:
					body := `{"error":"invalid_request","error_description":"ambiguous JSON-RPC message"}` + "\n"
					if a.status != http.StatusBadRequest || challenge != e.ambiguous() || a.body != body || len(ran) != 0 {
						t.Errorf("%s: %d %s %q, ran %v; want 400 %s", tg.name, a.status, challenge, a.body, ran, e.ambiguous())
					}
				case sdk:
					if a.status < 400 || challenge != "" || strings.Contains(a.body, "ambiguous") {
						t.Errorf("%s: %d %s %q, want the SDK's refusal", tg.name, a.status, challenge, a.body)
					}
				case served:
					if a.status != http.StatusOK || challenge != "" {
						t.Errorf("%s: %d %s %q, want 200 from the SDK", tg.name, a.status, challenge, a.body)
					}
				}
			}
		})
	}
}

// Any body at all, through Protect to a real (stateless, in-process) SDK
// handler, with a token that lacks the admin scope: admin never runs.
// The seeds are the attack bodies; a finding is a bypass.
func FuzzToolCallBypass(f *testing.F) {
	for _, tc := range toolAttacks() {
		f.Add(tc.body, true)
	}
	f.Add(`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe"}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"admin"}}]`, true)
	e := newEnv(f, tokenguard.Config{})
	var ran ranLog
	server := newToolServer(&ran, "admin", "safe")
	h := tgmcp.Protect(e.g, tgmcp.Options{Tools: adminOnly})(mcp.NewStreamableHTTPHandler(
		func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true}))
	bearer := "Bearer " + e.as.Mint(oauthtest.Claims{"sub": "mallory", "scope": "profile", "exp": time.Now().Add(24 * time.Hour).Unix()})
	f.Fuzz(func(t *testing.T, body string, batches bool) {
		r := httptest.NewRequest(http.MethodPost, e.endpoint("/mcp"), strings.NewReader(body))
		r.Header.Set("Authorization", bearer)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json, text/event-stream")
		if batches {
			r.Header.Set("Mcp-Protocol-Version", "2025-03-26")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if got := ran.take(); slices.Contains(got, "admin") {
			t.Fatalf("BYPASS: admin ran for %q: %d %s", body, w.Code, w.Body)
		}
	})
}
