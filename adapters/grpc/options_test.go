package tggrpc_test

import (
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard"
	tggrpc "github.com/tokenguard/tokenguard/adapters/grpc"
)

// Mistakes in the set-up panic when the interceptors are built, rather
// than leave a method's requirements applying to no call.
func TestOptionsPanics(t *testing.T) {
	_, g := newGuard(t, nil)
	scope := []tokenguard.Requirement{tokenguard.AllScopes("x")}
	for _, c := range []struct {
		name  string
		g     *tokenguard.Guard
		opts  tggrpc.Options
		panic string
	}{
		{"nil Guard", nil, tggrpc.Options{}, "nil Guard"},
		{"no leading slash", g, tggrpc.Options{Methods: map[string][]tokenguard.Requirement{"tgtest.Orders/Create": scope}}, `Options.Methods names "tgtest.Orders/Create"`},
		{"service only", g, tggrpc.Options{Methods: map[string][]tokenguard.Requirement{"/tgtest.Orders": scope}}, "not a full method name"},
		{"service prefix", g, tggrpc.Options{Methods: map[string][]tokenguard.Requirement{"/tgtest.Orders/": scope}}, "not a full method name"},
		{"pattern", g, tggrpc.Options{Public: []string{"/grpc.health.v1.Health/*/x"}}, `Options.Public names "/grpc.health.v1.Health/*/x"`},
		{"empty service", g, tggrpc.Options{Public: []string{"//Check"}}, "not a full method name"},
		{"empty", g, tggrpc.Options{Public: []string{""}}, "not a full method name"},
		{"both public and mapped", g, tggrpc.Options{Public: []string{methodCreate}, Methods: map[string][]tokenguard.Requirement{methodCreate: scope}}, "both Public and in Methods"},
	} {
		for name, build := range map[string]func(){
			"unary":  func() { tggrpc.UnaryServerInterceptor(c.g, c.opts) },
			"stream": func() { tggrpc.StreamServerInterceptor(c.g, c.opts) },
		} {
			func() {
				defer func() {
					r := recover()
					if s, _ := r.(string); !strings.HasPrefix(s, "tggrpc: ") || !strings.Contains(s, c.panic) {
						t.Errorf("%s, %s: panic %v, want one with %q", c.name, name, r, c.panic)
					}
				}()
				build()
			}()
		}
	}
}

// Changing the caller's Options after the interceptors are built changes
// nothing: they keep their own copy.
func TestOptionsCopied(t *testing.T) {
	as, g := newGuard(t, nil)
	opts := testOptions()
	conn, _ := start(t, g, opts)
	opts.Public[0] = methodCreate
	opts.Methods[methodCreate] = nil
	delete(opts.Methods, methodCreate)
	if o := unary(t, conn, methodPing, nil); o.reply != "-" {
		t.Errorf("Ping after the caller's change: %v %q", o.code, o.msg)
	}
	tok := as.Mint(nil)
	if o := unary(t, conn, methodCreate, authMD(bearer(tok))); o.code.String() != "PermissionDenied" {
		t.Errorf("Create after the caller's change: %v %q", o.code, o.msg)
	}
}
