package tgmcp

import (
	"encoding/json"
	"slices"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tokenguard/tokenguard"
)

// Keys of the auth.TokenInfo.Extra map that TokenInfo fills.
const (
	// ExtraPrincipal holds the *tokenguard.Principal itself, with every
	// claim of the token (Principal.Claims). PrincipalFrom reads it.
	ExtraPrincipal = "tokenguard.principal"
	// ExtraIssuer holds the issuer that vouched for the token
	// (Principal.Issuer), a string.
	ExtraIssuer = "iss"
	// ExtraSubject holds the token's sub claim (Principal.Subject), a
	// string, "" when the token has none. It is unique only per issuer:
	// key per-user state by it together with ExtraIssuer, or by UserID.
	ExtraSubject = "sub"
	// ExtraClientID holds the token's client_id claim (Principal.ClientID), a
	// string, "" when the token has none.
	ExtraClientID = "client_id"
	// ExtraKind holds how the token was validated (Principal.Kind.String()):
	// "jwt" or "opaque".
	ExtraKind = "tokenguard.kind"
)

// TokenInfo returns p as the MCP SDK's auth.TokenInfo, the form in which
// the SDK hands a caller's identity to tools (CallToolRequest.Extra.TokenInfo):
//
//   - Scopes is a copy of p.Scopes: the scope and scp claims, or the
//     claim Config.ScopeClaim names, the same scopes requirements read;
//   - Expiration is p.Expiry (the exp claim; zero for an introspected
//     token whose answer had none);
//   - UserID is UserID(p.Issuer, p.Subject) (with a third element "client"
//     when p.SubjectIsClient, so a client never shares a user's id): the issuer and the sub
//     claim together, since subjects are unique only per issuer (two
//     trusted issuers, or two tenants of one pattern, may each have an
//     "alice"). The SDK binds each streamable HTTP session to the UserID
//     that created it and answers 403 to the session's later requests
//     made with a token of another UserID, so a session is bound to one
//     user of one issuer. A token without sub leaves UserID empty, and
//     its session unbound, as the SDK does for unauthenticated sessions;
//   - Extra holds p.Subject, the bare sub claim, under ExtraSubject,
//     p.Issuer under ExtraIssuer, p.ClientID under
//     ExtraClientID, p.Kind under ExtraKind and p itself under
//     ExtraPrincipal.
//
// It decides nothing: p must come from the Guard (Middleware calls it for
// every request it lets through). It returns nil for a nil p.
func TokenInfo(p *tokenguard.Principal) *auth.TokenInfo {
	if p == nil {
		return nil
	}
	return &auth.TokenInfo{
		Scopes:     slices.Clone(p.Scopes),
		Expiration: p.Expiry,
		UserID:     principalUserID(p),
		Extra: map[string]any{
			ExtraPrincipal: p,
			ExtraSubject:   p.Subject,
			ExtraIssuer:    p.Issuer,
			ExtraClientID:  p.ClientID,
			ExtraKind:      p.Kind.String(),
		},
	}
}

// principalUserID is UserID for p, in a namespace of its own when the
// subject is a client's id (tokenguard.TokenShape.ClientAsSubject): a
// client named like a user must not pass for that user's session.
func principalUserID(p *tokenguard.Principal) string {
	if p.SubjectIsClient && p.Subject != "" {
		b, _ := json.Marshal([3]string{p.Issuer, p.Subject, "client"}) // cannot fail for strings
		return string(b)
	}
	return UserID(p.Issuer, p.Subject)
}

// UserID returns the auth.TokenInfo.UserID that TokenInfo sets for a
// token of issuer whose sub claim is subject: the JSON array of the two
// strings, such as
//
//	["https://as.example.com","alice"]
//
// (encoding/json's encoding, so < > & are escaped as \u003c \u003e
// \u0026). Two different pairs never give the same UserID, whatever
// characters (quotes, commas, brackets) the issuer or the subject
// contain: each JSON string ends at its first unescaped quote, so the
// pair can be read back only one way. That holds for valid UTF-8, and
// the strings of every Principal the Guard makes are valid UTF-8 (a JWT
// with invalid UTF-8 is refused; introspection answers are decoded by
// encoding/json). An empty subject gives "": a token without sub names
// no user, and the SDK leaves a session with an empty UserID unbound.
//
// Compare it, do not parse it: handlers read the bare subject from
// TokenInfo.Extra[ExtraSubject] and the issuer from
// TokenInfo.Extra[ExtraIssuer] (or both from PrincipalFrom).
func UserID(issuer, subject string) string {
	if subject == "" {
		return ""
	}
	b, _ := json.Marshal([2]string{issuer, subject}) // cannot fail for strings
	return string(b)
}

// PrincipalFrom returns the tokenguard Principal of the request a tool,
// prompt or resource handler is serving: the one Middleware put in the
// request's TokenInfo (req.GetExtra().TokenInfo.Extra[ExtraPrincipal]). It
// reports false when the request came through no Middleware, such as over
// an in-memory or stdio transport.
//
// Read the caller from the request, not from the handler's context: with
// stateful sessions the SDK runs handlers in a context derived from the
// HTTP request that created the session, so tokenguard.PrincipalFrom(ctx)
// there describes the token of that first request, not of the current
// one. req must not be nil.
func PrincipalFrom(req mcp.Request) (*tokenguard.Principal, bool) {
	extra := req.GetExtra()
	if extra == nil || extra.TokenInfo == nil {
		return nil, false
	}
	p, ok := extra.TokenInfo.Extra[ExtraPrincipal].(*tokenguard.Principal)
	return p, ok && p != nil
}
