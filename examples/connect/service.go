package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tokenguard/tokenguard"
)

// The service's procedures, written by hand as protoc-gen-connect-go would
// name them for a service orders.v1.OrderService: connect routes by URL
// path, "/" + service + "/" + method.
const (
	procedureWhoAmI      = "/orders.v1.OrderService/WhoAmI"      // any valid token
	procedureCreateOrder = "/orders.v1.OrderService/CreateOrder" // needs scopeWrite
)

// The scopes: any valid token may call WhoAmI, CreateOrder needs scopeWrite.
const (
	scopeRead  = "orders:read"
	scopeWrite = "orders:write"
)

// procedures returns the two procedures' connect handlers. Neither checks a
// token: the middleware in front has, and put the caller in the context.
func procedures() (whoAmI, createOrder *connect.Handler) {
	var orders atomic.Int64
	whoAmI = connect.NewUnaryHandler(procedureWhoAmI,
		func(ctx context.Context, _ *connect.Request[emptypb.Empty]) (*connect.Response[wrapperspb.StringValue], error) {
			p, ok := tokenguard.PrincipalFrom(ctx)
			if !ok { // not behind the guard: a wiring mistake, refuse
				return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("no caller"))
			}
			return connect.NewResponse(wrapperspb.String(p.Subject)), nil
		})
	createOrder = connect.NewUnaryHandler(procedureCreateOrder,
		func(ctx context.Context, _ *connect.Request[emptypb.Empty]) (*connect.Response[wrapperspb.StringValue], error) {
			p, ok := tokenguard.PrincipalFrom(ctx)
			if !ok {
				return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("no caller"))
			}
			return connect.NewResponse(wrapperspb.String(fmt.Sprintf("order %d for %s", orders.Add(1), p.Subject))), nil
		})
	return whoAmI, createOrder
}

// plain is the service behind tokenguard's own net/http middleware: every
// procedure needs a valid token (g.Handler), CreateOrder also scopeWrite
// (g.RequireScopes on its path). Refusals are the RFC 6750 answers, which
// a connect client over the Connect protocol reads as a code with the
// challenge in Error.Meta, and one over the gRPC protocol as a code alone
// (see README.md).
func plain(g *tokenguard.Guard) http.Handler {
	whoAmI, createOrder := procedures()
	mux := http.NewServeMux()
	mux.Handle(procedureWhoAmI, whoAmI)
	mux.Handle(procedureCreateOrder, g.RequireScopes(scopeWrite)(createOrder))
	return g.Handler(mux)
}

// connectAware is the same service and the same decisions, with refusals
// written by connect's ErrorWriter in the protocol the client speaks
// (Connect, gRPC or gRPC-Web): the code for the HTTP status, the
// description as message, and the challenges, Retry-After and DPoP-Nonce as
// header fields, which every connect client reads with Error.Meta.
// Requests that are no RPC get the RFC 6750 answer.
func connectAware(g *tokenguard.Guard) http.Handler {
	whoAmI, createOrder := procedures()
	mux := http.NewServeMux()
	mux.Handle(procedureWhoAmI, whoAmI)
	mux.Handle(procedureCreateOrder, createOrder)
	return guard(g, map[string][]tokenguard.Requirement{
		procedureCreateOrder: {tokenguard.AllScopes(scopeWrite)},
	}, mux)
}

// guard is net/http middleware like g.Handler with per-procedure
// requirements (by URL path; a procedure not listed needs a valid token),
// whose refusals connect clients understand in any protocol.
func guard(g *tokenguard.Guard, required map[string][]tokenguard.Requirement, next http.Handler) http.Handler {
	ew := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := g.Check(r, required[r.URL.Path]...)
		if err == nil {
			next.ServeHTTP(w, r.WithContext(tokenguard.WithPrincipal(r.Context(), p)))
			return
		}
		if !ew.IsSupported(r) {
			g.WriteError(w, r, err)
			return
		}
		code, desc := refusal(err)
		// The fields WriteError would send, as header fields: not in the
		// error's Meta, which ErrorWriter sends to a gRPC client as
		// trailers, where net/http drops WWW-Authenticate (RFC 9110 §6.5.1
		// keeps authentication fields out of trailers).
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		for _, c := range g.Challenges(r, err) {
			h.Add("WWW-Authenticate", c)
		}
		var e *tokenguard.Error
		if errors.As(err, &e) && e != nil {
			if code == connect.CodeUnavailable {
				h.Set("Retry-After", strconv.Itoa(max(int((e.RetryAfter+time.Second-1)/time.Second), 1)))
			}
			if e.DPoPNonce != "" {
				h.Set("DPoP-Nonce", e.DPoPNonce)
			}
		}
		_ = ew.Write(w, r, connect.NewError(code, errors.New(desc)))
	})
}

// refusal is the connect code and message for the Guard's refusal err:
// the code for its HTTP status and its description, what RFC 6750 lets the
// client see (never the cause).
func refusal(err error) (connect.Code, string) {
	var e *tokenguard.Error
	if !errors.As(err, &e) || e == nil || e.Status < 400 || e.Status > 599 {
		return connect.CodeInternal, "internal error"
	}
	desc := e.Description
	if desc == "" {
		desc = strings.ToLower(http.StatusText(e.Status))
	}
	return codeFor(e.Status), desc
}

// codeFor is the connect code for the HTTP status of a refusal, as gRPC
// clients would expect it (the gRPC adapter maps the same way). It differs
// from what a client infers from a bare HTTP status in one place: 400 is
// invalid_argument, not internal.
func codeFor(status int) connect.Code {
	switch status {
	case http.StatusBadRequest:
		return connect.CodeInvalidArgument
	case http.StatusUnauthorized:
		return connect.CodeUnauthenticated
	case http.StatusForbidden:
		return connect.CodePermissionDenied
	case http.StatusNotFound:
		return connect.CodeNotFound
	case http.StatusTooManyRequests:
		return connect.CodeResourceExhausted
	case http.StatusServiceUnavailable:
		return connect.CodeUnavailable
	}
	if status >= 400 && status < 500 {
		return connect.CodePermissionDenied
	}
	return connect.CodeInternal
}
