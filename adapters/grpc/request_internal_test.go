package tggrpc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

func TestNewRequest(t *testing.T) {
	cert := &x509.Certificate{Raw: []byte("a certificate")}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.MD{
		"authorization": {"Bearer a", "Bearer b"},
		"dpop":          {"proof"},
		":authority":    {"orders.example"},
		"trace-bin":     {"\x00\x01"},
		"x-other":       {"1"},
	})
	ctx = peer.NewContext(ctx, &peer.Peer{
		Addr:     &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242},
		AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}},
	})
	r := newRequest(ctx, "/pkg.Service/Method")
	if r.Method != http.MethodPost || r.URL.Path != "/pkg.Service/Method" || r.URL.EscapedPath() != "/pkg.Service/Method" || r.Context() != ctx {
		t.Errorf("request %s %s", r.Method, r.URL)
	}
	if got := r.Header.Values("Authorization"); !slices.Equal(got, []string{"Bearer a", "Bearer b"}) {
		t.Errorf("Authorization %q", got)
	}
	if got := r.Header.Values("DPoP"); !slices.Equal(got, []string{"proof"}) {
		t.Errorf("DPoP %q", got)
	}
	if r.Header.Get("X-Other") != "1" || len(r.Header) != 3 {
		t.Errorf("headers %q", r.Header)
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) != 1 || r.TLS.PeerCertificates[0] != cert || r.RemoteAddr != "127.0.0.1:4242" {
		t.Errorf("TLS %+v, RemoteAddr %q", r.TLS, r.RemoteAddr)
	}
	if r.Body == nil || r.ContentLength != 0 {
		t.Error("the request has a body")
	}

	// A call without metadata, peer or TLS; a method name without its
	// leading slash gets one, as the lookup key does.
	r = newRequest(context.Background(), "pkg.Service/Method")
	if r.URL.Path != "/pkg.Service/Method" || len(r.Header) != 0 || r.TLS != nil || r.RemoteAddr != "" {
		t.Errorf("bare request: %s %q %v %q", r.URL, r.Header, r.TLS, r.RemoteAddr)
	}
	if key("pkg.Service/Method") != "/pkg.Service/Method" || key("/pkg.Service/Method") != "/pkg.Service/Method" || key("//x/y") != "//x/y" {
		t.Error("key")
	}
	// A peer without TLS (plain TCP, or another AuthInfo).
	ctx = peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, AuthInfo: fakeAuth{}})
	if r := newRequest(ctx, "/a/b"); r.TLS != nil {
		t.Error("TLS from a non-TLS AuthInfo")
	}
}

type fakeAuth struct{}

func (fakeAuth) AuthType() string { return "fake" }

func TestCodes(t *testing.T) {
	for status, want := range map[int]codes.Code{
		400: codes.InvalidArgument, 401: codes.Unauthenticated, 403: codes.PermissionDenied,
		404: codes.NotFound, 429: codes.ResourceExhausted, 503: codes.Unavailable,
		500: codes.Internal, 418: codes.PermissionDenied, 502: codes.Internal, 200: codes.Internal,
	} {
		if got := code(status); got != want {
			t.Errorf("code(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestRefused(t *testing.T) {
	for name, c := range map[string]struct {
		err    error
		status int
		desc   string
		after  time.Duration
	}{
		"an *Error":           {&tokenguard.Error{Status: 401, Description: "token expired"}, 401, "token expired", 0},
		"wrapped":             {errors.Join(errors.New("x"), &tokenguard.Error{Status: 503, Description: "later", RetryAfter: 1500 * time.Millisecond}), 503, "later", 1500 * time.Millisecond},
		"no description":      {&tokenguard.Error{Status: 403}, 403, "forbidden", 0},
		"not an *Error":       {errors.New("boom"), 500, "internal error", 0},
		"nil *Error":          {(*tokenguard.Error)(nil), 500, "internal error", 0},
		"not an error status": {&tokenguard.Error{Status: 200, Description: "fine"}, 500, "internal error", 0},
	} {
		status, desc, after, _ := refusalOf(c.err)
		if status != c.status || desc != c.desc || after != c.after {
			t.Errorf("%s: %d %q %v", name, status, desc, after)
		}
	}
}

// retry-after is in whole seconds, rounded up, at least one, as the core's
// Retry-After; only 503 has one, and only refusals with a challenge have
// www-authenticate.
func TestRefusalMD(t *testing.T) {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	g, err := tokenguard.New(context.Background(), as.GuardConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for name, c := range map[string]struct {
		err   error
		retry []string
		chal  bool
	}{
		"503, 1.5s":     {&tokenguard.Error{Status: 503, RetryAfter: 1500 * time.Millisecond}, []string{"2"}, false},
		"503, none":     {&tokenguard.Error{Status: 503}, []string{"1"}, false},
		"503, 5s":       {&tokenguard.Error{Status: 503, RetryAfter: 5 * time.Second}, []string{"5"}, false},
		"401":           {&tokenguard.Error{Status: 401, RetryAfter: time.Second}, nil, true},
		"500":           {&tokenguard.Error{Status: 500}, nil, false},
		"a plain error": {errors.New("boom"), nil, false},
	} {
		md := refusalMD(g, nil, c.err)
		if got := md.Get(mdRetryAfter); !slices.Equal(got, c.retry) {
			t.Errorf("%s: retry-after %q, want %q", name, got, c.retry)
		}
		if got := md.Get(mdChallenge); (len(got) == 1) != c.chal || len(got) > 1 || c.chal && got[0] != g.Challenge(c.err) {
			t.Errorf("%s: www-authenticate %q", name, got)
		}
	}
}
