// Package tggrpc plugs tokenguard into gRPC servers (google.golang.org/grpc).
//
//	import tggrpc "github.com/tokenguard/tokenguard/adapters/grpc"
//
//	opts := tggrpc.Options{
//		Methods: map[string][]tokenguard.Requirement{
//			"/orders.v1.Orders/CreateOrder": {tokenguard.AllScopes("orders:write")},
//		},
//		Public: []string{"/grpc.health.v1.Health/Check"},
//	}
//	srv := grpc.NewServer(
//		grpc.ChainUnaryInterceptor(tggrpc.UnaryServerInterceptor(g, opts)),
//		grpc.ChainStreamInterceptor(tggrpc.StreamServerInterceptor(g, opts)),
//	)
//
// Every call needs a valid access token, sent as the authorization metadata
// ("Bearer <token>", or "DPoP <token>" with a proof in the dpop metadata when
// the Guard allows DPoP), except the methods listed in Options.Public; a
// method in Options.Methods needs its requirements as well. Method names are
// matched exactly, and a method left out of the map is not left open: it
// needs a valid token. The handler reads the caller with PrincipalFrom(ctx),
// which is tokenguard.PrincipalFrom; a stream handler's ServerStream.Context
// carries it.
//
// # No decision of its own
//
// The interceptors hand each call to Guard.Check as an *http.Request: method
// POST, path "/package.Service/Method" (the full method name), a header for
// each text metadata entry (authorization as Authorization, dpop as DPoP,
// every value kept), the TLS connection state of the peer (so that the
// client certificate of a mutual-TLS connection, from credentials.TLSInfo,
// vouches for a certificate-bound token, RFC 8705), and the call's context.
// Whatever the Guard decides for that request, over HTTP, it decides for the
// call: two authorization values are refused as two Authorization headers
// are, a DPoP-bound token sent as Bearer is refused, a DPoP proof must name
// the method POST and the URL Config.DPoP.Origin + "/package.Service/Method".
// The conformance table of github.com/tokenguard/tokenguard/oauthtest/conformance
// runs through a real gRPC server in the tests.
//
// # Refusals
//
// A refused call ends with a status whose message is the refusal's
// description (the error_description of the HTTP answer; never the token)
// and whose code follows from the HTTP status the Guard gives:
//
//	400 invalid_request                  codes.InvalidArgument
//	401 (no token, invalid_token, ...)   codes.Unauthenticated
//	403 insufficient_scope, ...          codes.PermissionDenied
//	503 authorization server unreachable codes.Unavailable (fail closed)
//	500 internal error                   codes.Internal
//
// (a status a Config.ValidateClaims hook chooses maps as 404 NotFound, 429
// ResourceExhausted, any other 4xx PermissionDenied and any other 5xx
// Internal). The RFC 6750 challenges, exactly Guard.Challenges, go in the
// www-authenticate metadata, with codes.Unavailable the seconds to wait in
// retry-after, and with a use_dpop_nonce refusal the nonce to use in
// dpop-nonce (RFC 9449 §8): in the response header of a unary call (read it
// with the grpc.Header call option), and in the trailer of a stream
// (ClientStream.Trailer once RecvMsg has returned the error). With DPoP
// allowed, the two challenges (Bearer and DPoP) come as one value, joined
// with ", ", as Guard.Challenge joins them. An accepted call in the DPoP
// scheme gets the Guard's current nonce in the dpop-nonce header, when the
// Guard issues nonces (DPoPConfig.NonceKey), as Guard.Handler sends
// DPoP-Nonce.
//
// The package is named tggrpc so that it does not shadow grpc itself.
package tggrpc
