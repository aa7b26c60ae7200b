package jwt

import (
	"bytes"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// errFoldedDuplicate: two member names of one object are equal under
// Unicode case folding. encoding/json matches struct fields that way
// (so "workſpace" fills a `json:"workspace"` field), while the built-in
// checks and ClaimIs match names exactly: a claims set with such a pair
// would read one way to Principal.Claims and another to everything else.
// Refusing it keeps every view of a claims set the same.
var errFoldedDuplicate = errors.New("two member names equal under case folding")

// nameSpan is a member name inside its quotes.
type nameSpan struct {
	start, end int32
	esc        bool // has escapes: decoded into memberNames.dec
	ascii      bool // no byte >= 0x80 (after decoding)
}

// memberNames collects the member names of one object and reports the
// first that folds to one seen before. The first inlineNames are compared
// pairwise without allocating (access tokens have a dozen members); past
// that, folded keys go into a map, so a hostile object of thousands of
// members costs linear time.
type memberNames struct {
	b     []byte
	n     int
	spans [inlineNames]nameSpan
	keys  map[string]nameSpan
	dec   map[int32][]byte // decoded names with escapes, by start; rare
}

const inlineNames = 16

// add records the name b[start:end] (inside its quotes).
func (m *memberNames) add(start, end int, esc bool) error {
	cur := nameSpan{start: int32(start), end: int32(end), esc: esc}
	if esc {
		// Decoded once: names are compared many times.
		if m.dec == nil {
			m.dec = make(map[int32][]byte)
		}
		d := decodeName(m.b[start:end])
		m.dec[cur.start] = d
		cur.ascii = isASCII(d)
	} else {
		cur.ascii = isASCII(m.b[start:end])
	}
	if m.keys == nil && m.n < inlineNames {
		for i := 0; i < m.n; i++ {
			if m.equalFold(m.spans[i], cur) {
				return m.dupError(m.spans[i], cur)
			}
		}
		m.spans[m.n] = cur
		m.n++
		return nil
	}
	if m.keys == nil {
		m.keys = make(map[string]nameSpan, 2*inlineNames)
		for i := 0; i < m.n; i++ {
			m.keys[string(foldKey(nil, m.decoded(m.spans[i])))] = m.spans[i]
		}
	}
	k := string(foldKey(nil, m.decoded(cur)))
	if prev, dup := m.keys[k]; dup {
		return m.dupError(prev, cur)
	}
	m.keys[k] = cur
	return nil
}

// dupError is errDuplicate for two names that decode to the same text,
// errFoldedDuplicate for two that differ only in case folding.
func (m *memberNames) dupError(prev, cur nameSpan) error {
	name := m.b[cur.start:cur.end]
	if len(name) > 64 {
		name = name[:64]
	}
	if bytes.Equal(m.decoded(prev), m.decoded(cur)) {
		return fmt.Errorf("%w %q", errDuplicate, name)
	}
	return fmt.Errorf("%w: %q", errFoldedDuplicate, name)
}

// equalFold reports whether two names are equal under case folding, as
// bytes.EqualFold decides for their decoded text.
func (m *memberNames) equalFold(a, b nameSpan) bool {
	ra, rb := m.decoded(a), m.decoded(b)
	if a.ascii && b.ascii {
		// ASCII letters fold only to ASCII letters and to ſ and K, which
		// are not ASCII: same length, byte-wise fold.
		if len(ra) != len(rb) {
			return false
		}
		for i := range ra {
			if ra[i] != rb[i] && lowerASCII(ra[i]) != lowerASCII(rb[i]) {
				return false
			}
		}
		return true
	}
	return bytes.EqualFold(ra, rb)
}

// decoded is a name as encoding/json reads it (see decodeName); a view of
// b when it has no escapes.
func (m *memberNames) decoded(s nameSpan) []byte {
	if s.esc {
		return m.dec[s.start]
	}
	return m.b[s.start:s.end]
}

// decodeName decodes the escapes of a name the scanner accepted, as
// encoding/json does: an escaped lone surrogate becomes U+FFFD. Invalid
// UTF-8 is kept as is; bytes.EqualFold and foldKey read each invalid byte
// as U+FFFD, as encoding/json's replacement does.
func decodeName(raw []byte) []byte {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		if raw[i+1] != 'u' {
			out = append(out, unescapeByte(raw[i+1]))
			i += 2
			continue
		}
		r := hex4(raw[i+2 : i+6])
		i += 6
		if 0xD800 <= r && r <= 0xDBFF && i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
			if lo := hex4(raw[i+2 : i+6]); 0xDC00 <= lo && lo <= 0xDFFF {
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
				i += 6
			}
		}
		if 0xD800 <= r && r <= 0xDFFF {
			r = utf8.RuneError
		}
		out = utf8.AppendRune(out, r)
	}
	return out
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// foldKey appends the case-folded form of name to dst: equal keys exactly
// when bytes.EqualFold holds. Each rune becomes the smallest rune of its
// simple-folding orbit (so 's', 'S' and 'ſ' all become 'S').
func foldKey(dst, name []byte) []byte {
	for i := 0; i < len(name); {
		r, n := utf8.DecodeRune(name[i:])
		i += n
		for {
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// CheckObject checks that b is one JSON object (the text of an
// introspection answer, say) with no two member names, in it or in any
// object nested in it, equal under case folding, and no nesting deeper
// than maxDepth.
func CheckObject(b []byte) error {
	return scanObject(b, otherObject, nil)
}
