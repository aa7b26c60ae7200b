package tgfiber

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v3"
	"github.com/valyala/fasthttp"
)

// newRequest returns the *http.Request the core judges, built from the
// request fasthttp read: what net/http's server would have made of the
// same bytes.
//
//   - Method, RequestURI and Host as the client sent them; URL parsed from
//     RequestURI as net/http parses it, so URL.Path and URL.EscapedPath are
//     the path the client asked for (a DPoP proof's htu names it), whatever
//     Fiber's routing made of it.
//   - Header: every field of the request as it stands when the middleware
//     runs (a Fiber middleware in front that removed or set a field has its
//     way, as it would with net/http), each value of a repeated field kept,
//     in order; Host is in r.Host and Transfer-Encoding in
//     r.TransferEncoding, where net/http has them.
//   - TLS: the connection's state when fasthttp serves TLS (for
//     certificate-bound tokens), nil otherwise.
//   - RemoteAddr, Proto, ContentLength, and a Body that reads the body
//     fasthttp already holds, only if something reads it.
//   - Context: c.Context(), Fiber's context of the request.
//
// Keys and values are copied, all into one string: the core and the hooks
// it calls (TokenSources, ClientCertificate, ErrorHandler) may keep a
// string, and fasthttp reuses its buffers for the next request on the
// connection. For the same reason nothing is pooled. Once the core has
// answered, the returned body (nil when there is none) must be detached.
//
// An error means the request-target does not parse as net/http's server
// requires: it would have answered 400 before any handler ran.
func newRequest(c fiber.Ctx) (*http.Request, *lazyBody, error) {
	fctx := c.RequestCtx()
	h := &fctx.Request.Header

	// One string holds the request-target, the host and every header key
	// and value; the request holds substrings of it. Its size and the
	// number of fields come from the header block fasthttp read, which
	// holds every field received with its ": " and CRLF: more than enough,
	// unless a middleware in front added fields. Then the builder grows,
	// and the strings taken before stay valid: a strings.Builder only
	// appends, never writing again what its String returned.
	rawURI, rawHost, raw := h.RequestURI(), h.Host(), h.RawHeaders()
	fields := bytes.Count(raw, []byte("\n"))
	var buf strings.Builder
	buf.Grow(len(rawURI) + len(rawHost) + len(raw))
	buf.Write(rawURI)
	buf.Write(rawHost)
	s := buf.String()
	requestURI, host := s[:len(rawURI)], s[len(rawURI):]

	u, err := url.ParseRequestURI(requestURI)
	if err != nil {
		return nil, nil, err
	}
	if u.Host != "" { // absolute-form: the URL's host, as in net/http
		host = u.Host
	}

	header := make(http.Header, fields)
	values := make([]string, 0, fields)
	var transferEncoding []string
	for k, v := range h.All() {
		start := buf.Len()
		buf.Write(k)
		buf.Write(v)
		s = buf.String()
		key, value := http.CanonicalHeaderKey(s[start:start+len(k)]), s[start+len(k):]
		switch key {
		case "Host":
			continue // r.Host
		case "Transfer-Encoding":
			transferEncoding = append(transferEncoding, value)
			continue
		}
		values = append(values, value)
		if prev, ok := header[key]; ok {
			// A repeated field gets a list of its own (prev's capacity
			// is clipped, so append copies and values stays as it is).
			header[key] = append(prev, value)
		} else {
			header[key] = values[len(values)-1 : len(values) : len(values)]
		}
	}

	tmpl := http.Request{
		Method:           method(h.Method()),
		URL:              u,
		Header:           header,
		Host:             host,
		RequestURI:       requestURI,
		RemoteAddr:       remoteAddr(fctx.RemoteAddr()),
		TLS:              fctx.TLSConnectionState(),
		TransferEncoding: transferEncoding,
		Body:             http.NoBody,
	}
	tmpl.Proto, tmpl.ProtoMajor, tmpl.ProtoMinor = proto(h.Protocol())
	var body *lazyBody
	switch n := h.ContentLength(); {
	case n > 0:
		tmpl.ContentLength = int64(n)
		body = &lazyBody{req: &fctx.Request}
	case n == -1: // chunked: of unknown length, as net/http has it
		tmpl.ContentLength = -1
		body = &lazyBody{req: &fctx.Request}
	} // 0, or -2: neither Content-Length nor Transfer-Encoding, no body
	if body != nil {
		tmpl.Body = body
	}
	return tmpl.WithContext(c.Context()), body, nil
}

// lazyBody reads the body fasthttp has read, from the first Read on: the
// core reads a body only for a form-encoded access_token
// (Config.AllowFormToken), so no other request pays for it. Fiber's
// handlers still find the body as it was.
type lazyBody struct {
	req *fasthttp.Request // nil once detached
	r   bytes.Reader
	on  bool
}

func (b *lazyBody) Read(p []byte) (int, error) {
	if !b.on {
		if b.req == nil {
			return 0, io.EOF
		}
		b.r.Reset(b.req.Body())
		b.on = true
	}
	return b.r.Read(p)
}

func (*lazyBody) Close() error { return nil }

// detach cuts the body off the fasthttp request, whose buffers serve the
// next request on the connection once this one is answered: a request a
// hook kept reads EOF from then on. It may be called on nil.
func (b *lazyBody) detach() {
	if b == nil {
		return
	}
	b.req = nil
	b.r.Reset(nil)
	b.on = true
}

// method returns the request's method: a constant for the usual ones, so
// that they cost no copy.
func method(m []byte) string {
	switch string(m) { // compared in place, no allocation
	case http.MethodGet:
		return http.MethodGet
	case http.MethodPost:
		return http.MethodPost
	case http.MethodPut:
		return http.MethodPut
	case http.MethodPatch:
		return http.MethodPatch
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodHead:
		return http.MethodHead
	case http.MethodOptions:
		return http.MethodOptions
	}
	return string(m)
}

// proto returns the request's protocol and version, as net/http has them.
func proto(p []byte) (string, int, int) {
	switch string(p) {
	case "HTTP/1.1":
		return "HTTP/1.1", 1, 1
	case "HTTP/1.0":
		return "HTTP/1.0", 1, 0
	}
	v := string(p)
	if major, minor, ok := http.ParseHTTPVersion(v); ok {
		return v, major, minor
	}
	return v, 1, 1
}

// remoteAddr is addr as net/http's RemoteAddr has it, "ip:port" (one
// allocation for a TCP address).
func remoteAddr(addr net.Addr) string {
	switch a := addr.(type) {
	case nil:
		return ""
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
	}
	return addr.String()
}
