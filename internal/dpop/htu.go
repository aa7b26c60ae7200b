package dpop

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// normalizeHTU returns the normal form of an htu claim or of the request's
// URI, for comparing them as RFC 9449 §4.3 check 9 asks: "ignoring any
// query and fragment parts", with the syntax-based and scheme-based
// normalisation of RFC 3986 §6.2.2 and §6.2.3, and nothing more (no
// protocol-based guesses, §6.2.4). It accepts only an absolute http or
// https URI with an authority, and refuses rather than guesses at anything
// a real request target does not have.
//
//   - The whole text is printable ASCII (RFC 3986 §2: a URI is ASCII; an
//     IRI's non-ASCII characters are percent-encoded by the client).
//   - The fragment ('#' on) and then the query ('?' on) are dropped.
//   - The scheme is lower-cased (§6.2.2.1) and must be http or https.
//   - "//" and an authority follow. Userinfo is refused: RFC 9110 §4.2.4
//     deprecates it in http(s) URIs, and "https://rs.example@evil.example/"
//     is a classic way to make a URI read as another host.
//   - The host is a reg-name of unreserved characters or an IPv6 address
//     in brackets (no zone, no IPvFuture), and is lower-cased (§6.2.2.1). Percent-encoding in the host and an empty
//     host are refused. A trailing dot is kept: "rs.example." is not
//     normalised to "rs.example".
//   - The port, when given, is decimal digits (at most 5, 1 to 65535); an
//     empty port and the scheme's default (80 for http, 443 for https) are
//     removed (§6.2.3), any other is written without leading zeros.
//   - An empty path becomes "/" (§6.2.3). The path is otherwise kept as
//     is, case included: "/API" is not "/api", "/a/" is not "/a", "//a"
//     is not "/a", and '+' is not "%20".
//   - Percent-encodings must be '%' and two hex digits; those of an
//     unreserved character (ALPHA DIGIT - . _ ~) are decoded and the
//     others written with upper-case hex (§6.2.2.1, §6.2.2.2): "%7e" is
//     "~", "%2f" is "%2F" and stays distinct from "/". Any character that
//     is neither a pchar nor "/" (space, '"', '<', '\\', '{', '|', ...) is
//     refused.
//   - Then dot segments are removed (§6.2.2.3, the algorithm of §5.2.4),
//     so "/a/./b/../c" is "/a/c" and "/a/%2E%2E/c" is "/c".
//
// IPv6 literals are compared as written (lower-cased): "[::1]" and
// "[0::1]" differ, which fails closed.
func normalizeHTU(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty URI")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7F {
			return "", fmt.Errorf("byte %d is not a printable ASCII character", i)
		}
	}
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	if i := strings.IndexByte(s, '?'); i >= 0 {
		s = s[:i]
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || !isScheme(scheme) {
		return "", errors.New("no scheme")
	}
	scheme = strings.ToLower(scheme)
	var defaultPort int
	switch scheme {
	case "http":
		defaultPort = 80
	case "https":
		defaultPort = 443
	default:
		return "", fmt.Errorf("scheme %s is not http or https", quote(scheme))
	}
	if !strings.HasPrefix(rest, "//") {
		return "", errors.New("no authority")
	}
	rest = rest[2:]
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	if strings.IndexByte(authority, '@') >= 0 {
		return "", errors.New("userinfo in the authority")
	}
	host, port, err := splitHostPort(authority)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(s) + 1)
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(host)
	if port != "" {
		n, err := parsePort(port)
		if err != nil {
			return "", err
		}
		if n != defaultPort {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(n))
		}
	}
	p, err := normalizePath(path)
	if err != nil {
		return "", err
	}
	b.WriteString(removeDotSegments(p))
	return b.String(), nil
}

// isScheme reports whether s is ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func isScheme(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// splitHostPort splits an authority without userinfo into its lower-cased
// host and its port digits ("" when absent or empty).
func splitHostPort(a string) (host, port string, err error) {
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "", "", errors.New("unclosed IPv6 literal")
		}
		lit := a[1:end]
		for i := 0; i < len(lit); i++ {
			if c := lit[i]; !isHex(c) && c != ':' && c != '.' {
				return "", "", errors.New("IPv6 literal with a zone or not IPv6")
			}
		}
		if ip, err := netip.ParseAddr(lit); err != nil || !ip.Is6() {
			return "", "", errors.New("not an IPv6 literal")
		}
		host, rest := a[:end+1], a[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return "", "", errors.New("text after the IPv6 literal")
			}
			port = rest[1:]
		}
		return strings.ToLower(host), port, nil
	}
	host = a
	if i := strings.LastIndexByte(a, ':'); i >= 0 {
		host, port = a[:i], a[i+1:]
	}
	if host == "" {
		return "", "", errors.New("empty host")
	}
	for i := 0; i < len(host); i++ {
		if !isUnreserved(host[i]) {
			return "", "", fmt.Errorf("host has the character %q", host[i])
		}
	}
	return strings.ToLower(host), port, nil
}

// parsePort reads a non-empty port: at most 5 digits, 1 to 65535.
func parsePort(p string) (int, error) {
	if len(p) > 5 {
		return 0, errors.New("port too long")
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if !isDigit(p[i]) {
			return 0, fmt.Errorf("port has the character %q", p[i])
		}
		n = n*10 + int(p[i]-'0')
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %d out of range", n)
	}
	return n, nil
}

// normalizePath checks a path (empty or starting with '/') and normalises
// its percent-encodings; an empty path is "/".
func normalizePath(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", fmt.Errorf("path byte %d: '%%' not followed by two hex digits", i)
			}
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			if isUnreserved(v) {
				b.WriteByte(v)
			} else {
				const upper = "0123456789ABCDEF"
				b.WriteByte('%')
				b.WriteByte(upper[v>>4])
				b.WriteByte(upper[v&15])
			}
			i += 2
		case c == '/' || isPchar(c):
			b.WriteByte(c)
		default:
			return "", fmt.Errorf("path has the character %q", c)
		}
	}
	return b.String(), nil
}

// removeDotSegments is RFC 3986 §5.2.4 for a path that starts with '/'.
// Every step consumes input; the output only shrinks by the segment just
// before its end, so the whole costs time linear in len(in).
func removeDotSegments(in string) string {
	out := make([]byte, 0, len(in))
	dropLast := func() {
		if i := lastSlash(out); i >= 0 {
			out = out[:i]
		} else {
			out = out[:0]
		}
	}
	for in != "" {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			dropLast()
		case in == "/..":
			in = "/"
			dropLast()
		case in == "." || in == "..":
			in = ""
		default:
			j := 0
			if in[0] == '/' {
				j = 1
			}
			if k := strings.IndexByte(in[j:], '/'); k >= 0 {
				j += k
			} else {
				j = len(in)
			}
			out = append(out, in[:j]...)
			in = in[j:]
		}
	}
	return string(out)
}

func lastSlash(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '/' {
			return i
		}
	}
	return -1
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case isDigit(c):
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// isUnreserved: ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986 §2.3).
func isUnreserved(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

// isPchar: unreserved / sub-delims / ":" / "@" (RFC 3986 §3.3), without
// pct-encoded, which the caller handles.
func isPchar(c byte) bool {
	return isUnreserved(c) || strings.IndexByte("!$&'()*+,;=:@", c) >= 0
}
