package jwt

// A small scanner for the flat JSON objects of a JWS header and JWT claims
// set, in place of decoding them with encoding/json into a map and then
// each member again (about 70 allocations per token).
//
// It works in two passes over the decoded bytes. The first, scanObject,
// checks the whole text against the RFC 8259 grammar (numbers, literals,
// string escapes and control characters, every nested value of members we
// do not read, trailing data) and records where the value of each member we
// read lies. The second decodes those values one by one, in the order the
// map-based decoder checked them, so the accepted inputs, the results and
// which error comes first are those of encoding/json, except where this
// scanner is deliberately stricter (fail closed):
//
//   - Nesting deeper than maxDepth (arrays and objects, the top-level
//     object counting as 1) is an error; encoding/json allows 10,000 levels.
//     The scanner recurses at most maxDepth times, so a depth bomb is an
//     error, never a stack overflow.
//   - Two member names of one object (at any depth) that are equal, or
//     equal under Unicode case folding, are an error; encoding/json (and
//     jwx) take the last of two equal names, and encoding/json fills a
//     struct field from any name that folds to its own ("workſpace" fills
//     `json:"workspace"`). RFC 7515 §5.2 and RFC 7519 §4 allow rejecting;
//     it leaves no room for a parser that takes the first (as some do), or
//     for Principal.Claims, to see another token than the checks do.
//   - A string we read (those members' string values and the strings in
//     their lists) that holds invalid UTF-8 or a \u escape of a lone
//     surrogate is an error; encoding/json replaces either with U+FFFD, so
//     two different byte strings could read as the same issuer or scope.
//     Strings we only skip (unknown members, nonce and the like, member
//     names) are checked against the grammar only, as encoding/json does.
//
// Member names are compared exactly, after decoding their escapes, like
// encoding/json's map keys and jwx's token decoder (json.Decoder.Token):
// "\u0069ss" is iss, "ISS" is not.

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxDepth bounds the nesting of arrays and objects, the top-level object
// included. JOSE headers and access-token claims are flat; 64 leaves room
// for structured custom claims.
const maxDepth = 64

// The errors of the cases where the scanner is stricter than encoding/json
// (see above); the errors Parse returns wrap them (and ErrMalformed).
var (
	errTooDeep    = fmt.Errorf("JSON nested deeper than %d levels", maxDepth)
	errDuplicate  = errors.New("duplicate member")
	errBadUnicode = errors.New("string is not valid UTF-8 (invalid bytes or a lone surrogate escape)")
)

// span is where a member's value lies in the object's text; the zero span
// means the member is absent (no value can start at offset 0, where the
// object's '{' is).
type span struct{ start, end int }

func (s span) present() bool { return s.end > 0 }

// Which members each kind of object has that we read: the index of a
// member's span in the array scanObject fills.
const (
	hAlg = iota
	hKid
	hTyp
	hCrit
	nHeaderMembers
)

const (
	cIss = iota
	cSub
	cAud
	cExp
	cNbf
	cIat
	cClientID
	cScope
	cScp
	cJti
	cNonce
	cAtHash
	cCHash
	cCnf
	nClaimMembers
)

type objectKind int

const (
	headerObject objectKind = iota
	claimsObject
	otherObject // nothing read: grammar, depth and names only
)

// maxNameLen is the length of the longest name we read (client_id).
const maxNameLen = len("client_id")

// memberIndex returns the index of the member named name in an object of
// kind k, or -1 when we do not read it. Names are case-sensitive.
func memberIndex(k objectKind, name []byte) int {
	if k == otherObject {
		return -1
	}
	if k == headerObject {
		switch string(name) {
		case "alg":
			return hAlg
		case "kid":
			return hKid
		case "typ":
			return hTyp
		case "crit":
			return hCrit
		}
		return -1
	}
	switch string(name) {
	case "iss":
		return cIss
	case "sub":
		return cSub
	case "aud":
		return cAud
	case "exp":
		return cExp
	case "nbf":
		return cNbf
	case "iat":
		return cIat
	case "client_id":
		return cClientID
	case "scope":
		return cScope
	case "scp":
		return cScp
	case "jti":
		return cJti
	case "nonce":
		return cNonce
	case "at_hash":
		return cAtHash
	case "c_hash":
		return cCHash
	case "cnf":
		return cCnf
	}
	return -1
}

// scanner is the first pass: a validating walk over one JSON text.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) syntax(what string) error {
	if s.i >= len(s.b) {
		return fmt.Errorf("invalid JSON: unexpected end looking for %s", what)
	}
	return fmt.Errorf("invalid JSON: unexpected %q at offset %d looking for %s", s.b[s.i], s.i, what)
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// scanObject checks that b is one JSON object, optionally surrounded by
// white space, and sets vals[i] to the span of the value of each member
// memberIndex names (vals must have room for kind k's members).
func scanObject(b []byte, k objectKind, vals []span) error {
	s := scanner{b: b}
	s.ws()
	if s.i >= len(b) || b[s.i] != '{' {
		return errors.New("not a JSON object")
	}
	s.i++
	s.ws()
	names := memberNames{b: b}
	if s.i < len(b) && b[s.i] == '}' {
		s.i++
	} else {
		for {
			if s.i >= len(b) || b[s.i] != '"' {
				return s.syntax("a member name")
			}
			nameStart := s.i
			esc, err := s.str()
			if err != nil {
				return err
			}
			name := b[nameStart+1 : s.i-1]
			if err := names.add(nameStart+1, s.i-1, esc); err != nil {
				return err
			}
			idx := lookupName(k, name, esc)
			s.ws()
			if s.i >= len(b) || b[s.i] != ':' {
				return s.syntax("':' after a member name")
			}
			s.i++
			s.ws()
			start := s.i
			if err := s.value(1); err != nil {
				return err
			}
			if idx >= 0 {
				if vals[idx].present() {
					return fmt.Errorf("%w %q", errDuplicate, name)
				}
				vals[idx] = span{start, s.i}
			}
			s.ws()
			if s.i < len(b) && b[s.i] == ',' {
				s.i++
				s.ws()
				continue
			}
			if s.i < len(b) && b[s.i] == '}' {
				s.i++
				break
			}
			return s.syntax("',' or '}' in an object")
		}
	}
	s.ws()
	if s.i != len(b) {
		return s.syntax("the end after the top-level object")
	}
	return nil
}

// lookupName is memberIndex for a name as it appears between its quotes
// (already checked by str), decoding its escapes first. Every name we read
// is short ASCII, so a name that decodes to anything longer or to a
// non-ASCII character is none of them.
func lookupName(k objectKind, raw []byte, esc bool) int {
	if !esc {
		return memberIndex(k, raw)
	}
	var buf [maxNameLen]byte
	n := 0
	for i := 0; i < len(raw); n++ {
		if n == len(buf) {
			return -1
		}
		c := raw[i]
		switch {
		case c == '\\' && raw[i+1] == 'u':
			r := hex4(raw[i+2 : i+6])
			if r >= utf8.RuneSelf {
				return -1
			}
			c = byte(r)
			i += 6
		case c == '\\':
			c = unescapeByte(raw[i+1])
			i += 2
		case c >= utf8.RuneSelf:
			return -1
		default:
			i++
		}
		buf[n] = c
	}
	return memberIndex(k, buf[:n])
}

// value checks one value at s.i, inside depth enclosing arrays and objects.
func (s *scanner) value(depth int) error {
	if s.i >= len(s.b) {
		return s.syntax("a value")
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, err := s.str()
		return err
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return s.syntax("a value")
}

// object checks a nested object, which starts at depth.
func (s *scanner) object(depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	s.i++ // '{'
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	names := memberNames{b: s.b}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return s.syntax("a member name")
		}
		nameStart := s.i
		esc, err := s.str()
		if err != nil {
			return err
		}
		if err := names.add(nameStart+1, s.i-1, esc); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.syntax("':' after a member name")
		}
		s.i++
		s.ws()
		if err := s.value(depth); err != nil {
			return err
		}
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ',' {
			s.i++
			s.ws()
			continue
		}
		if s.i < len(s.b) && s.b[s.i] == '}' {
			s.i++
			return nil
		}
		return s.syntax("',' or '}' in an object")
	}
}

// array checks an array, which starts at depth.
func (s *scanner) array(depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	s.i++ // '['
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		if err := s.value(depth); err != nil {
			return err
		}
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ',' {
			s.i++
			s.ws()
			continue
		}
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return nil
		}
		return s.syntax("',' or ']' in an array")
	}
}

// str checks a string at s.i (its opening quote) against the grammar:
// no unescaped control characters, only the escapes RFC 8259 §7 defines.
// Bytes from 0x80 on are not checked here (encoding/json does not either);
// the strings we read are checked for UTF-8 when decoded. esc tells
// whether the string has escapes.
func (s *scanner) str() (esc bool, err error) {
	b := s.b
	for i := s.i + 1; i < len(b); {
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				s.i = len(b)
				return esc, s.syntax("an escape")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || hex4(b[i+2:i+6]) < 0 {
					s.i = i
					return esc, s.syntax("four hex digits after \\u")
				}
				i += 6
			default:
				s.i = i + 1
				return esc, s.syntax("an escape")
			}
		case c < 0x20:
			s.i = i
			return esc, s.syntax("a string character (control characters must be escaped)")
		default:
			i++
		}
	}
	s.i = len(b)
	return esc, s.syntax("the end of a string")
}

// number checks a number at s.i: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	b, i := s.b, s.i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(b, i+1)
	default:
		s.i = i
		return s.syntax("a digit")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			s.i = i
			return s.syntax("a digit after '.'")
		}
		i = digits(b, i+1)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			s.i = i
			return s.syntax("a digit in an exponent")
		}
		i = digits(b, i+1)
	}
	s.i = i
	return nil
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

func (s *scanner) literal(lit string) error {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return s.syntax(lit)
	}
	s.i += len(lit)
	return nil
}

// hex4 is the value of four hex digits, or -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unescapeByte is the byte a two-character escape \c stands for.
func unescapeByte(c byte) byte {
	switch c {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return c // '"', '\\', '/'
}

// The second pass: decoding the values scanObject found. b is the object's
// text, which scanObject accepted, so the grammar needs no checking here.
// The readers below take the JSON twice: as b, the bytes they scan, and
// as src, the same bytes as one string (or "" when there is none), so
// that a value without escapes is a substring of src: a token costs one
// copy of its payload, however many members are read, and no unsafe
// aliasing of a buffer that could be written.

// substr returns b[start:end] as a string: a substring of src when there
// is one, a copy otherwise.
func substr(b []byte, src string, start, end int) string {
	if src != "" {
		return src[start:end]
	}
	return string(b[start:end])
}

// stringEnd returns the offset just past the string that starts at b[i]
// (its opening quote) and whether it has escapes.
func stringEnd(b []byte, i int) (int, bool) {
	esc := false
	for i++; ; i++ {
		switch b[i] {
		case '"':
			return i + 1, esc
		case '\\':
			esc = true
			i++ // the escaped character; \u's hex digits are neither '"' nor '\\'
		}
	}
}

// unquote decodes the string b[start:end] (quotes included). It fails for
// invalid UTF-8 and escaped lone surrogates instead of replacing them.
// Without escapes the result is a view of b, or a constant when known is
// true and the value is a well-known alg or typ.
func unquote(b []byte, src string, start, end int, esc, known bool) (string, error) {
	raw := b[start+1 : end-1]
	// Escapes are ASCII, so checking the whole raw text checks every
	// unescaped run of it.
	if !utf8.Valid(raw) {
		return "", errBadUnicode
	}
	if !esc {
		if known {
			if w := wellKnown(raw); w != "" {
				return w, nil
			}
		}
		return substr(b, src, start+1, end-1), nil
	}
	var sb strings.Builder
	sb.Grow(len(raw)) // decoding never lengthens
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			j := bytes.IndexByte(raw[i:], '\\')
			if j < 0 {
				j = len(raw) - i
			}
			sb.Write(raw[i : i+j])
			i += j
			continue
		}
		if raw[i+1] != 'u' {
			sb.WriteByte(unescapeByte(raw[i+1]))
			i += 2
			continue
		}
		r := hex4(raw[i+2 : i+6])
		i += 6
		switch {
		case 0xDC00 <= r && r <= 0xDFFF:
			return "", errBadUnicode // a low surrogate first
		case 0xD800 <= r && r <= 0xDBFF:
			if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
				return "", errBadUnicode
			}
			lo := hex4(raw[i+2 : i+6])
			if lo < 0xDC00 || lo > 0xDFFF {
				return "", errBadUnicode
			}
			r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
			i += 6
		}
		sb.WriteRune(r)
	}
	return sb.String(), nil
}

// wellKnown returns raw as a constant string for the common alg and typ
// values, and "" for any other.
func wellKnown(raw []byte) string {
	switch string(raw) {
	case "RS256":
		return "RS256"
	case "RS384":
		return "RS384"
	case "RS512":
		return "RS512"
	case "PS256":
		return "PS256"
	case "PS384":
		return "PS384"
	case "PS512":
		return "PS512"
	case "ES256":
		return "ES256"
	case "ES384":
		return "ES384"
	case "ES512":
		return "ES512"
	case "EdDSA":
		return "EdDSA"
	case "Ed25519":
		return "Ed25519"
	case "JWT":
		return "JWT"
	case "at+jwt":
		return "at+jwt"
	case "application/at+jwt":
		return "application/at+jwt"
	}
	return ""
}

// stringMember reads an optional string member; null counts as absent and
// any other type is an error.
func stringMember(b []byte, src string, v span, name string, known bool) (string, error) {
	if !v.present() || b[v.start] == 'n' {
		return "", nil
	}
	if b[v.start] != '"' {
		return "", fmt.Errorf("%s is not a string", name)
	}
	end, esc := stringEnd(b, v.start)
	s, err := unquote(b, src, v.start, end, esc, known)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// How listMember reads a string in place of a list.
type listMode int

const (
	listOnly      listMode = iota // a string is an error (crit)
	stringIsOne                   // a string is a list of one (aud)
	stringIsSplit                 // a string is split on SP (scope, scp)
)

var errNotList = errors.New("neither a string nor a list of strings")

// listMember reads a list of strings; absent or null is nil, a null
// element is "" (as with encoding/json), an empty list is empty but not
// nil. The []string is allocated once, at its final length; the elements
// without escapes are substrings of src.
func listMember(b []byte, src string, v span, mode listMode) ([]string, error) {
	if !v.present() || b[v.start] == 'n' {
		return nil, nil
	}
	switch b[v.start] {
	case '"':
		if mode == listOnly {
			return nil, errNotList
		}
		end, esc := stringEnd(b, v.start)
		s, err := unquote(b, src, v.start, end, esc, false)
		if err != nil {
			return nil, err
		}
		if mode == stringIsOne {
			return []string{s}, nil
		}
		return splitSP(s), nil
	case '[':
	default:
		return nil, errNotList
	}
	// Count the elements, checking that each is a string or null.
	n := 0
	for i := v.start + 1; ; {
		i = skipWS(b, i)
		switch b[i] {
		case ']':
			goto counted
		case ',':
			i++
			continue
		case '"':
			i, _ = stringEnd(b, i)
		case 'n':
			i += len("null")
		default:
			return nil, errNotList
		}
		n++
	}
counted:
	list := make([]string, n)
	n = 0
	for i := v.start + 1; ; {
		i = skipWS(b, i)
		switch b[i] {
		case ']':
			return list, nil
		case ',':
			i++
			continue
		case '"':
			end, esc := stringEnd(b, i)
			var err error
			if list[n], err = unquote(b, src, i, end, esc, false); err != nil {
				return nil, err
			}
			i = end
		case 'n':
			i += len("null") // list[n] stays ""
		}
		n++
	}
}

func skipWS(b []byte, i int) int {
	for {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
}

// splitSP splits s on runs of SP, like strings.FieldsFunc(s, r == ' ')
// (RFC 6749 §3.3: scope-tokens are separated by SP only; splitting on other
// white space would turn one scope the server issued, "repo:x\u00a0admin",
// into two, one of them "admin"). SP never occurs inside a multi-byte UTF-8
// sequence, so splitting bytes is splitting runes. The result is never nil.
func splitSP(s string) []string {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && (i == 0 || s[i-1] == ' ') {
			n++
		}
	}
	list := make([]string, 0, n)
	for i := 0; i < len(s); {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		j := i
		for j < len(s) && s[j] != ' ' {
			j++
		}
		if j > i {
			list = append(list, s[i:j])
		}
		i = j
	}
	return list
}

// dateMember reads a NumericDate (RFC 7519 §2): a JSON number of seconds,
// possibly fractional; null or absent is the zero time and false.
func dateMember(b []byte, v span) (time.Time, bool, error) {
	if !v.present() || b[v.start] == 'n' {
		return time.Time{}, false, nil
	}
	if c := b[v.start]; c != '-' && (c < '0' || c > '9') {
		return time.Time{}, false, errors.New("not a number")
	}
	// The grammar is checked: ParseFloat sees a JSON number, never one of
	// the other spellings it accepts (Inf, 0x1p3, 1_0).
	f, err := strconv.ParseFloat(string(b[v.start:v.end]), 64)
	if err != nil {
		return time.Time{}, false, errors.New("not a number") // beyond float64, as encoding/json
	}
	// Keep far-future and far-past values representable instead of wrapping.
	if math.IsNaN(f) || f > 1e15 || f < -1e15 {
		return time.Time{}, false, errors.New("out of range")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}
