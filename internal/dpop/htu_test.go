package dpop

import (
	"net/url"
	"strings"
	"testing"
)

func TestNormalizeHTU(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://rs.example/api", "https://rs.example/api"},
		// §6.2.2.1: scheme and host are case-insensitive, the path is not.
		{"HTTPS://RS.Example/API", "https://rs.example/API"},
		// §6.2.3: the default port and an empty port are removed; others kept.
		{"https://rs.example:443/a", "https://rs.example/a"},
		{"http://rs.example:80/a", "http://rs.example/a"},
		{"https://rs.example:/a", "https://rs.example/a"},
		{"https://rs.example:80/a", "https://rs.example:80/a"},
		{"http://rs.example:443/a", "http://rs.example:443/a"},
		{"https://rs.example:08443/a", "https://rs.example:8443/a"},
		{"https://rs.example:0443/a", "https://rs.example/a"},
		// §6.2.3: an empty path is "/".
		{"https://rs.example", "https://rs.example/"},
		{"https://rs.example:443", "https://rs.example/"},
		{"https://rs.example?q", "https://rs.example/"},
		// §6.2.2.2: unreserved characters decoded, the rest upper-case hex.
		{"https://rs.example/%7euser", "https://rs.example/~user"},
		{"https://rs.example/%7Euser", "https://rs.example/~user"},
		{"https://rs.example/%41%5a%30%2D%2e%5F", "https://rs.example/AZ0-._"},
		{"https://rs.example/a%2fb", "https://rs.example/a%2Fb"},
		{"https://rs.example/a%3ab", "https://rs.example/a%3Ab"},
		{"https://rs.example/caf%c3%a9", "https://rs.example/caf%C3%A9"},
		{"https://rs.example/a%20b", "https://rs.example/a%20b"},
		{"https://rs.example/a+b", "https://rs.example/a+b"},
		{"https://rs.example/a%2Bb", "https://rs.example/a%2Bb"},
		{"https://rs.example/%25", "https://rs.example/%25"},
		// §6.2.2.3: dot segments, after decoding.
		{"https://rs.example/a/./b", "https://rs.example/a/b"},
		{"https://rs.example/a/../b", "https://rs.example/b"},
		{"https://rs.example/a/b/c/./../../g", "https://rs.example/a/g"},
		{"https://rs.example/../../a", "https://rs.example/a"},
		{"https://rs.example/a/..", "https://rs.example/"},
		{"https://rs.example/a/.", "https://rs.example/a/"},
		{"https://rs.example/a/%2E%2E/b", "https://rs.example/b"},
		{"https://rs.example/a/%2e/b", "https://rs.example/a/b"},
		{"https://rs.example/a/.../b", "https://rs.example/a/.../b"},
		{"https://rs.example/a/..b/c", "https://rs.example/a/..b/c"},
		{"https://rs.example/a/%2F../b", "https://rs.example/a/%2F../b"},
		{"https://rs.example/a/%2F/../b", "https://rs.example/a/b"},
		// Kept: trailing slash, empty segments, trailing dot of the host.
		{"https://rs.example/a/", "https://rs.example/a/"},
		{"https://rs.example//a", "https://rs.example//a"},
		{"https://rs.example./a", "https://rs.example./a"},
		// Query and fragment dropped (RFC 9449 §4.3 check 9).
		{"https://rs.example/a?b=c", "https://rs.example/a"},
		{"https://rs.example/a#f", "https://rs.example/a"},
		{"https://rs.example/a#f?x", "https://rs.example/a"},
		{"https://rs.example/a?x#f", "https://rs.example/a"},
		{"https://rs.example/a?x=/../b", "https://rs.example/a"},
		// Hosts.
		{"https://[2001:DB8::1]:8443/a", "https://[2001:db8::1]:8443/a"},
		{"https://[::1]/a", "https://[::1]/a"},
		{"https://[::ffff:192.0.2.1]/a", "https://[::ffff:192.0.2.1]/a"},
		{"http://127.0.0.1:8080/a", "http://127.0.0.1:8080/a"},
		{"https://xn--bcher-kva.example/a", "https://xn--bcher-kva.example/a"},
		{"https://my_service/a", "https://my_service/a"},
		// pchar sub-delims, ':' and '@' in the path.
		{"https://rs.example/a:b@c!$&'()*,;=", "https://rs.example/a:b@c!$&'()*,;="},
	} {
		got, err := normalizeHTU(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("normalizeHTU(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestNormalizeHTURefuses(t *testing.T) {
	for _, in := range []string{
		"",
		"/a",
		"//rs.example/a",
		"rs.example/a",
		"https:rs.example/a",
		"https:/rs.example/a",
		"ftp://rs.example/a",
		"wss://rs.example/a",
		"1https://rs.example/a",
		"ht tps://rs.example/a",
		":/a",
		"https:///a",
		"https://:443/a",
		"https://user@rs.example/a",
		"https://user:pass@rs.example/a",
		"https://rs.example@evil.example/a",
		"https://@rs.example/a",
		"https://rs.example:http/a",
		"https://rs.example:-1/a",
		"https://rs.example:0/a",
		"https://rs.example:65536/a",
		"https://rs.example:000443/a",
		"https://rs.example:44 3/a",
		"https://rs.example:443:443/a",
		"https://rs%2Eexample/a",
		"https://rs.exa mple/a",
		"https://rs.example!/a",
		"https://r\u00e9s.example/a",
		"https://[::1/a",
		"https://[]/a",
		"https://[:]/a",
		"https://[1::2::3]/a",
		"https://[12345::1]/a",
		"https://[1.2.3.4]/a",
		"https://[::1%25eth0]/a",
		"https://[v1.x]/a",
		"https://[::1]x/a",
		"https://[::1]]/a",
		"https://rs.example/a b",
		"https://rs.example/a\tb",
		"https://rs.example/a\x00",
		"https://rs.example/a\x7f",
		"https://rs.example/\u00e9",
		"https://rs.example/a%",
		"https://rs.example/a%2",
		"https://rs.example/a%g0",
		"https://rs.example/a%%41",
		"https://rs.example/a\"b",
		"https://rs.example/a<b>",
		"https://rs.example/a\\b",
		"https://rs.example/a{b}",
		"https://rs.example/a|b",
		"https://rs.example/a^b",
		"https://rs.example/a`b",
		"https://rs.example/a[b]",
		"https://rs.example/a\u00a0",
		" https://rs.example/a",
		"https://rs.example/a ",
	} {
		if got, err := normalizeHTU(in); err == nil {
			t.Errorf("normalizeHTU(%q) = %q, want an error", in, got)
		}
	}
}

// The RFC 3986 §5.2.4 examples, and the edge cases of the algorithm.
func TestRemoveDotSegments(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/a/b/c/./../../g", "/a/g"},
		{"mid/content=5/../6", "mid/6"},
		{"/", "/"},
		{"/.", "/"},
		{"/..", "/"},
		{"/./", "/"},
		{"/../", "/"},
		{"/a/b/..", "/a/"},
		{"/a/b/../", "/a/"},
		{"/a/b/../..", "/"},
		{"/a/b/../../..", "/"},
		{"/a//../b", "/a/b"},
		{"/a/./../b", "/b"},
		{"/..a/b", "/..a/b"},
		{"/a/.b", "/a/.b"},
		{".", ""},
		{"..", ""},
		{"../a", "a"},
		{"./a", "a"},
	} {
		if got := removeDotSegments(tc.in); got != tc.want {
			t.Errorf("removeDotSegments(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A hostile path of dot segments costs linear time.
func TestRemoveDotSegmentsLinear(t *testing.T) {
	in := strings.Repeat("/aaaaaaaa", 1000) + strings.Repeat("/..", 1000)
	if got := removeDotSegments(in); got != "/" {
		t.Fatalf("got %q", got)
	}
}

// Normalising twice changes nothing, and an accepted URI is one net/url
// reads as the same scheme, host and path: a caller that builds Options.URL
// with net/url and this comparator agree.
func FuzzNormalizeHTU(f *testing.F) {
	for _, s := range []string{
		"https://rs.example/api", "HTTPS://RS.Example:443/a/./b/../%7e?x#y", "http://[::1]:8080/%2e%2E/a",
		"https://rs.example:/a//b/", "https://rs.example/a/%2F../b", "https://u@rs.example/", "http://a:0080",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := normalizeHTU(s)
		if err != nil {
			return
		}
		n2, err := normalizeHTU(n)
		if err != nil || n2 != n {
			t.Fatalf("normalizeHTU(%q) = %q, then %q, %v", s, n, n2, err)
		}
		u, err := url.Parse(n)
		if err != nil {
			t.Fatalf("net/url cannot parse %q: %v", n, err)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			t.Fatalf("net/url reads %q with more parts: %#v", n, u)
		}
		if rebuilt := u.Scheme + "://" + u.Host + u.EscapedPath(); rebuilt != n {
			t.Fatalf("net/url reads %q as %q", n, rebuilt)
		}
	})
}
