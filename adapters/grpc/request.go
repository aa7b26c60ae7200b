package tggrpc

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// newRequest is the call of fullMethod, with context ctx (its incoming
// metadata and peer), as the *http.Request the Guard judges:
//
//   - method POST (as gRPC sends over HTTP/2) and URL path
//     "/" + fullMethod without its leading slash, so a DPoP proof names
//     Config.DPoP.Origin + "/package.Service/Method" as its htu;
//   - a header for each text metadata entry, every value kept (two
//     authorization values are two Authorization headers, which the Guard
//     refuses), dpop as DPoP; pseudo-headers (":authority") and binary
//     ("-bin") entries are left out;
//   - TLS, the connection state of a TLS peer (credentials.TLSInfo), so
//     that the client certificate of a mutual-TLS connection vouches for a
//     certificate-bound token; nil on a connection without TLS;
//   - RemoteAddr, the peer's address; no body.
//
// grpc-go lower-cases metadata keys and merges keys that differ only in
// case (over HTTP/2 they cannot differ); an interceptor in front that
// adds an "Authorization" key beside the client's "authorization" makes
// one value win, by map order: add credentials in lower case.
func newRequest(ctx context.Context, fullMethod string) *http.Request {
	r := &http.Request{
		Method:     http.MethodPost,
		URL:        &url.URL{Path: "/" + strings.TrimPrefix(fullMethod, "/")},
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     http.Header{},
		Body:       http.NoBody,
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for k, vs := range md {
		if strings.HasPrefix(k, ":") || strings.HasSuffix(k, "-bin") {
			continue
		}
		ck := http.CanonicalHeaderKey(k)
		r.Header[ck] = append(r.Header[ck], vs...)
	}
	if p, ok := peer.FromContext(ctx); ok {
		if p.Addr != nil {
			r.RemoteAddr = p.Addr.String()
		}
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			state := info.State
			r.TLS = &state
		}
	}
	return r.WithContext(ctx)
}
