package jwt

import (
	"github.com/tokenguard/tokenguard/internal/jsontest"

	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The reference: Parse's header and claims decoding as it was before the
// scanner (encoding/json into map[string]json.RawMessage, then each member
// again), kept verbatim (renamed) for the differential tests below.

// refMembers decodes a JSON object into its members, keyed by their exact
// names. JOSE names are case-sensitive (RFC 7515 §4, RFC 7519 §4), while
// encoding/json matches struct fields case-insensitively: decoding straight
// into a struct would let "ISS" stand in for "iss".
func refMembers(b []byte) (map[string]json.RawMessage, error) {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// refStr reads an optional string member; null counts as absent.
func refStr(m map[string]json.RawMessage, name string) (string, bool, error) {
	raw, ok := m[name]
	if !ok || string(raw) == "null" {
		return "", false, nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false, fmt.Errorf("%s is not a string", name)
	}
	return v, true, nil
}

func refParseHeader(t *Token, b []byte) error {
	if len(b) == 0 || b[0] != '{' {
		// MaybeJWS classifies by this first byte; Parse agrees with it.
		return fmt.Errorf("%w: header does not start with '{'", ErrMalformed)
	}
	m, err := refMembers(b)
	if err != nil {
		return fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	h := &t.Header
	alg, _, err := refStr(m, "alg")
	if err != nil {
		return fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	if alg == "" {
		return fmt.Errorf("%w: header has no alg", ErrMalformed)
	}
	h.Alg = alg
	if h.Kid, _, err = refStr(m, "kid"); err != nil {
		return fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	if h.Typ, _, err = refStr(m, "typ"); err != nil {
		return fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	if raw, ok := m["crit"]; ok {
		h.HasCrit = true
		if err := json.Unmarshal(raw, &h.Crit); err != nil {
			return fmt.Errorf("%w: header crit is not a list of strings", ErrMalformed)
		}
	}
	return nil
}

func refParseClaims(t *Token) error {
	m, err := refMembers(t.Payload)
	if err != nil {
		return fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	cl := &t.Claims
	for _, f := range []struct {
		name string
		dst  *string
	}{{"iss", &cl.Issuer}, {"sub", &cl.Subject}, {"client_id", &cl.ClientID}, {"jti", &cl.ID}} {
		if *f.dst, _, err = refStr(m, f.name); err != nil {
			return fmt.Errorf("%w: claims: %w", ErrMalformed, err)
		}
	}
	_, nonce := m["nonce"]
	_, atHash := m["at_hash"]
	_, cHash := m["c_hash"]
	cl.IDTokenMarkers = nonce || atHash || cHash
	cnf, ok := m["cnf"]
	cl.Confirmation = ok && string(cnf) != "null"
	if cl.Confirmation {
		cl.ConfirmationJSON = cnf
	}
	if cl.Audience, err = refStringOrList(m["aud"], false); err != nil {
		return fmt.Errorf("%w: aud: %w", ErrMalformed, err)
	}
	if cl.Scope, err = refStringOrList(m["scope"], true); err != nil {
		return fmt.Errorf("%w: scope: %w", ErrMalformed, err)
	}
	if cl.Scp, err = refStringOrList(m["scp"], true); err != nil {
		return fmt.Errorf("%w: scp: %w", ErrMalformed, err)
	}
	if cl.Expiry, cl.HasExpiry, err = refNumericDate(m["exp"]); err != nil {
		return fmt.Errorf("%w: exp: %w", ErrMalformed, err)
	}
	if cl.NotBefore, _, err = refNumericDate(m["nbf"]); err != nil {
		return fmt.Errorf("%w: nbf: %w", ErrMalformed, err)
	}
	if cl.IssuedAt, _, err = refNumericDate(m["iat"]); err != nil {
		return fmt.Errorf("%w: iat: %w", ErrMalformed, err)
	}
	return nil
}

// refStringOrList reads a string or an array of strings; null or absent is nil.
// With split, a string is a list separated by SP (RFC 6749 §3.3 scopes).
func refStringOrList(raw json.RawMessage, split bool) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		if split {
			// RFC 6749 §3.3: scope-tokens are separated by SP only. Splitting
			// on other (Unicode) white space would turn one scope the server
			// issued, "repo:x\u00a0admin", into two, one of them "admin".
			return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' }), nil
		}
		return []string{s}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, errors.New("neither a string nor a list of strings")
	}
	return list, nil
}

// refNumericDate reads a NumericDate (RFC 7519 §2): a JSON number of seconds,
// possibly fractional.
func refNumericDate(raw json.RawMessage) (time.Time, bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, false, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return time.Time{}, false, errors.New("not a number")
	}
	// Keep far-future and far-past values representable instead of wrapping.
	if math.IsNaN(f) || f > 1e15 || f < -1e15 {
		return time.Time{}, false, errors.New("out of range")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// refParse is Parse with the reference decoding.
func refParse(s string) (*Token, error) {
	h, rest, ok := strings.Cut(s, ".")
	if !ok {
		return nil, fmt.Errorf("%w: not three parts", ErrMalformed)
	}
	p, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(sig, '.') >= 0 {
		return nil, fmt.Errorf("%w: not three parts", ErrMalformed)
	}
	if h == "" || p == "" || sig == "" {
		return nil, fmt.Errorf("%w: empty part", ErrMalformed)
	}
	hb, err := decode(h)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	t := &Token{SigningInput: s[:len(h)+1+len(p)]}
	if err := refParseHeader(t, hb); err != nil {
		return nil, err
	}
	if t.Payload, err = decode(p); err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	t.PayloadText = string(t.Payload)
	if t.Signature, err = decode(sig); err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrMalformed, err)
	}
	if err := refParseClaims(t); err != nil {
		return nil, err
	}
	return t, nil
}

// Stages at which decoding a header and payload can fail.
const (
	stageOK = iota
	stageHeader
	stageClaims
)

// decodeBoth decodes a header and a payload as Parse does, with the new
// scanner or the reference.
func decodeBoth(header, payload []byte, ref bool) (*Token, int, error) {
	t := &Token{Payload: payload, PayloadText: string(payload)}
	parseHeader, parseClaims := t.parseHeader, t.parseClaims
	if ref {
		parseHeader = func(b []byte) error { return refParseHeader(t, b) }
		parseClaims = func() error { return refParseClaims(t) }
	}
	if err := parseHeader(header); err != nil {
		return nil, stageHeader, err
	}
	if err := parseClaims(); err != nil {
		return nil, stageClaims, err
	}
	return t, stageOK, nil
}

// The names each object's decoding reads, and of those, the ones whose
// strings it reads.
var (
	headerRead        = []string{"alg", "kid", "typ", "crit"}
	headerReadStrings = []string{"alg", "kid", "typ", "crit"}
	claimsRead        = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "client_id", "scope", "scp", "jti", "nonce", "at_hash", "c_hash", "cnf"}
	claimsReadStrings = []string{"iss", "sub", "aud", "client_id", "scope", "scp", "jti"}
)

// strictness lists, worked out independently of the scanner from a JSON
// text that encoding/json accepts, the reasons the scanner must reject it
// for: the documented cases where it is stricter than encoding/json.
type strictness struct {
	tooDeep, duplicate, badUnicode bool
}

func (s strictness) any() bool { return s.tooDeep || s.duplicate || s.badUnicode }

func (s *strictness) add(b []byte, read, readStrings []string) {
	if jsonDepth(b) > maxDepth {
		s.tooDeep = true
	}
	if jsontest.FoldedDuplicate(b) {
		s.duplicate = true
	}
	members, err := topLevelMembers(b)
	if err != nil {
		return // deeper than json.Decoder allows: tooDeep already says it
	}
	seen := map[string]bool{}
	for _, m := range members {
		if contains(read, m.name) {
			if seen[m.name] {
				s.duplicate = true
			}
			seen[m.name] = true
		}
		if contains(readStrings, m.name) && (!utf8.Valid(m.value) || hasLoneSurrogate(m.value)) {
			s.badUnicode = true
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type member struct {
	name  string // decoded, as json.Decoder.Token (and so jwx) reads it
	value []byte // verbatim
}

// topLevelMembers lists every member of a JSON object, duplicates included,
// with json.Decoder.
func topLevelMembers(b []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not an object: %v", err)
	}
	var list []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		list = append(list, member{tok.(string), raw})
	}
	return list, nil
}

// jsonDepth is the deepest nesting of arrays and objects in a valid JSON
// text, the outermost counting as 1.
func jsonDepth(b []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			deepest = max(deepest, depth)
		case '}', ']':
			depth--
		}
	}
	return deepest
}

// hasLoneSurrogate reports whether a valid JSON value has a \u escape of a
// surrogate that is not part of a high-low pair, in any of its strings.
func hasLoneSurrogate(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if b[i+1] != 'u' {
			i++
			continue
		}
		r := hex4(b[i+2:])
		i += 5
		switch {
		case 0xDC00 <= r && r <= 0xDFFF:
			return true
		case 0xD800 <= r && r <= 0xDBFF:
			if i+6 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
				return true
			}
			if lo := hex4(b[i+3:]); lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 6
		}
	}
	return false
}

// checkDifferential decodes header and payload with the scanner and the
// reference and fails unless they agree: equal results when both accept,
// both reject together, except that the scanner rejects exactly the inputs
// the reference accepts for a documented reason (and says which).
func checkDifferential(t *testing.T, header, payload []byte) {
	t.Helper()
	got, gotStage, err := decodeBoth(header, payload, false)
	want, wantStage, refErr := decodeBoth(header, payload, true)
	if err != nil && !errors.Is(err, ErrMalformed) {
		t.Fatalf("error %v does not wrap ErrMalformed", err)
	}
	if refErr != nil {
		if err == nil {
			t.Fatalf("scanner accepts what encoding/json rejects (%v):\nheader  %q\npayload %q\ngot %+v", refErr, header, payload, got)
		}
		return
	}
	var why strictness
	why.add(header, headerRead, headerReadStrings)
	if gotStage != stageHeader { // the header's failure hides the payload
		why.add(payload, claimsRead, claimsReadStrings)
	}
	if err == nil {
		if why.any() {
			t.Fatalf("scanner accepts what it must reject (%+v):\nheader  %q\npayload %q", why, header, payload)
		}
		if !reflect.DeepEqual(got.Header, want.Header) || !reflect.DeepEqual(got.Claims, want.Claims) {
			t.Fatalf("results differ:\nheader  %q\npayload %q\nscanner   %#v\n          %#v\nreference %#v\n          %#v", header, payload, got.Header, got.Claims, want.Header, want.Claims)
		}
		return
	}
	switch {
	case why.tooDeep && errors.Is(err, errTooDeep),
		why.duplicate && (errors.Is(err, errDuplicate) || errors.Is(err, errFoldedDuplicate)),
		why.badUnicode && errors.Is(err, errBadUnicode):
	default:
		t.Fatalf("scanner rejects (stage %d) what encoding/json accepts (stage %d), for no documented reason (%+v): %v\nheader  %q\npayload %q", gotStage, wantStage, why, err, header, payload)
	}
}

// manyMembers is n distinct members "m0":0,...
func manyMembers(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"m%d":%d`, i, i)
	}
	return strings.Join(parts, ",")
}

func nest(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

// trickyPayloads and trickyHeaders seed the differential tests.
var trickyPayloads = []string{
	// Names: escapes, case, near misses.
	`{"\u0069ss":"a"}`, `{"i\u0073s":"a","iss":"b"}`, `{"\u0069\u0073\u0073":"a"}`, `{"\u0063lient_id":"c"}`,
	`{"client_id\u0000":"c"}`, `{"\u0000iss":1}`, `{"iss\/":1}`, `{"\ud800":1}`, `{"\uD83D\uDE00":1}`, `{"":1}`,
	`{"ISS":"a","Iss":"b"}`, `{"i\"ss":1}`, `{"iss\\":1}`, `{"\u00e9":1}`, "{\"\xff\":1}", `{"client_id_x":1,"client_i":2}`,
	// Duplicates.
	`{"iss":"a","iss":"b"}`, `{"iss":null,"iss":"b"}`, `{"exp":1,"exp":2}`, `{"nonce":1,"nonce":2}`, `{"x":1,"x":2}`,
	`{"aud":"a","aud":["b"]}`, `{"scope":"a","scp":"a"}`, `{"cnf":{"jkt":"x"}}`, `{"cnf":null}`, `{"cnf":1,"cnf":2}`, `{"cnf" : null }`,
	// Strings.
	`{"iss":"\ud83d\ude00"}`, `{"iss":"\uD83D\uDE00x"}`, `{"iss":"\ud83d"}`, `{"iss":"\ude00"}`, `{"iss":"\ud83d\u0041"}`,
	`{"iss":"\ud83d\ud83d\ude00"}`, `{"iss":"\ud83dx"}`, `{"iss":"a\u0000b"}`, `{"iss":"\"\\\/\b\f\n\r\t"}`,
	`{"iss":"\u00e9\u20AC\uFFFD"}`, "{\"iss\":\"\xff\"}", "{\"iss\":\"\xed\xa0\x80\"}", "{\"iss\":\"\xc0\xaf\"}",
	"{\"iss\":\"\xe2\x82\"}", "{\"iss\":\"é€😀\"}", "{\"x\":\"\xff\"}", `{"x":"\ud800"}`, `{"nonce":"\ud800"}`,
	"{\"nonce\":\"\xff\"}", "{\"x\":\"a\tb\"}", "{\"iss\":\"a\x01\"}", "{\"iss\":\"a\x7f\"}", `{"iss":"\x"}`, `{"iss":"\u12"}`,
	`{"iss":"\u12G4"}`, `{"iss":"\U0041"}`, `{"iss":"\'"}`, `{"iss":"abc`, `{"iss":"abc\`, `{"iss":'a'}`,
	// Lists.
	`{"aud":["a",null,"b"]}`, `{"aud":[null]}`, `{"aud":[]}`, `{"aud":[ ]}`, `{"aud":["a" , "b" ]}`, `{"aud":["a","\u0062"]}`,
	`{"aud":["a",["b"]]}`, `{"aud":["a",{}]}`, `{"aud":["a",true]}`, `{"aud":[1]}`, `{"aud":""}`, `{"aud":"\u0061 b"}`,
	`{"aud":["\ud800"]}`, "{\"aud\":[\"a\",\"\xff\"]}", `{"aud":["a","b",]}`, `{"aud":[,"a"]}`, `{"aud":["a""b"]}`,
	`{"scope":[]}`, `{"scope":["a b"]}`, `{"scope":"a\u0020b"}`, `{"scp":"   "}`, `{"scp":" a  b "}`, `{"scope":""}`,
	`{"scope":"a\u00a0b c"}`, `{"scope":null}`, `{"scope":[null,null]}`, `{"scp":["x","y","z\n"]}`, `{"scope":{"a":1}}`,
	// Numbers.
	`{"exp":1e400}`, `{"exp":-1e400}`, `{"exp":1e-400}`, `{"exp":-0}`, `{"exp":-0.0}`, `{"exp":0e0}`, `{"exp":01}`, `{"exp":00}`,
	`{"exp":1.}`, `{"exp":.5}`, `{"exp":+1}`, `{"exp":1e}`, `{"exp":1e+}`, `{"exp":1E+2}`, `{"exp":1e-2}`, `{"exp":-}`, `{"exp":--1}`,
	`{"exp":NaN}`, `{"exp":Infinity}`, `{"exp":-Infinity}`, `{"exp":0x10}`, `{"exp":1_000}`, `{"exp":123456789012345678901234567890}`,
	`{"exp":0.1e1}`, `{"exp":1.7e9 }`, `{"exp":999999999999999.9999}`, `{"exp":1000000000000000.1}`, `{"exp":1e15}`, `{"exp":-1e15}`,
	`{"exp":1.0000000000000001e15}`, `{"exp":1700000000.999999999}`, `{"exp":-1.5}`, `{"nbf":"1"}`, `{"iat":[1]}`, `{"exp":1 2}`,
	`{"x":-01}`, `{"x":1.5e}`, `{"x":2.}`, `{"x":-.1}`, `{"x":1e5000}`,
	// Literals and markers.
	`{"nonce":null}`, `{"at_hash":{}}`, `{"c_hash":[1,2]}`, `{"x":true,"y":false,"z":null}`, `{"x":tru}`, `{"x":nul}`,
	`{"x":True}`, `{"x":nulll}`, `{"x":falsey}`, `{"iss":nulla}`,
	// White space, structure, trailing data.
	" \t\n\r{ \"iss\" :\n\"a\" ,\t\"aud\" : [ \"x\" , \"y\" ] ,\"exp\"\r:\r1 } \r\n", "{\"iss\":\"a\"}\x00", "\xef\xbb\xbf{}",
	"\f{}", "{}\f", "{\u00a0}", `{"x":{"a":[1,{"b":[true,false,null,"s"]}],"c":{}},"iss":"a"}`, `{"x":{"a":1,}}`, `{"x":{"a"}}`,
	`{"x":{"a":1 "b":2}}`, `{"x":{1:2}}`, `{"iss":"a"} x`, `{"iss":"a"},`, `{"iss":"a"}}`, `{"iss":"a",}`, `{,}`, `{"a"}`,
	`{"a":}`, `{"a" 1}`, `{'a':1}`, `{"a":1`, `{"a":[1,2}`, `{"a":[1,2]]}`, `{`, `}`, `{}{}`, `[]`, `"{}"`, `null`, ``, ` `,
	// Depth.
	`{"x":` + nest(63) + `}`, `{"x":` + nest(64) + `}`, `{"x":` + nest(200) + `}`, `{"x":` + strings.Repeat(`{"a":`, 63) + `1` + strings.Repeat(`}`, 63) + `}`,
	`{"x":` + strings.Repeat(`{"a":`, 64) + `1` + strings.Repeat(`}`, 64) + `}`, `{"x":` + strings.Repeat("[", 70),
	`{"aud":` + nest(70) + `}`, `{"exp":1,"x":` + nest(65) + `,"iss":"\ud800"}`,
}

var trickyHeaders = []string{
	`{"alg":"RS256","crit":["a",null]}`, `{"alg":"RS256","crit":null}`, `{"alg":"RS256","crit":[]}`, `{"alg":"\u0052S256"}`,
	`{"alg":"RS256","alg":"none"}`, "{\"alg\":\"RS256\",\"kid\":\"\xff\"}", `{"alg":"RS256","typ":"\ud800"}`,
	`{"alg":"RS256","crit":["\udc00"]}`, "{\"alg\":\"none\",\"x\":\"\xff\"}", `{"alg":"RS256", "typ" : "JWT" }`,
	` {"alg":"RS256"}`, `{"alg":"RS256"} `, `{"alg":"RS256","crit":"x"}`, `{"alg":null}`, `{"alg":""}`, `{"alg":1}`,
	`{"\u0061lg":"ES256","kid":"k\u0031","typ":"at+jwt"}`, `{"alg":"RS256","Alg":"none","ALG":"x"}`, `{"alg":"EdDSA","typ":"application/at+jwt"}`,
	`{"alg":"RS256","x":` + nest(64) + `}`, `{"alg":"RS256","kid":"a","kid":"a"}`, `{"alg":"RS256","crit":["exp"],"exp":1}`,
	`{"alg":"RS256","crit":[1]}`, `{"alg":"RS256","crit":{}}`, `{"alg":"RS256","typ":null,"kid":null}`, `{"alg":"RS2566"}`,
}

// differentialSeeds are header and payload pairs: the tricky ones, and
// those of the Parse tests.
func differentialSeeds(t testing.TB) [][2]string {
	var seeds [][2]string
	for _, p := range trickyPayloads {
		seeds = append(seeds, [2]string{okHeader, p}, [2]string{`{"alg":"ES256"}`, p})
	}
	for _, h := range trickyHeaders {
		seeds = append(seeds, [2]string{h, okClaims})
	}
	for _, tc := range parseCases(t) {
		parts := strings.Split(tc.in, ".")
		if len(parts) != 3 {
			continue
		}
		h, err1 := base64.RawURLEncoding.DecodeString(parts[0])
		p, err2 := base64.RawURLEncoding.DecodeString(parts[1])
		if err1 == nil && err2 == nil && len(h)+len(p) < 10_000 {
			seeds = append(seeds, [2]string{string(h), string(p)})
		}
	}
	return seeds
}

func TestScanMatchesEncodingJSON(t *testing.T) {
	for _, s := range differentialSeeds(t) {
		checkDifferential(t, []byte(s[0]), []byte(s[1]))
	}
	// The full Parse, on the Parse tests' tokens.
	for _, tc := range parseCases(t) {
		got, err := Parse(tc.in)
		want, refErr := refParse(tc.in)
		if (err == nil) != (refErr == nil) || err == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Parse = %+v, %v; reference %+v, %v", tc.name, got, err, want, refErr)
		}
	}
}

// FuzzScanMatchesEncodingJSON: over arbitrary headers and payloads, the
// scanner accepts only what encoding/json accepts, with the same result,
// and rejects what encoding/json accepts only for a documented reason.
func FuzzScanMatchesEncodingJSON(f *testing.F) {
	for _, s := range differentialSeeds(f) {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, header, payload []byte) {
		checkDifferential(t, header, payload)
	})
}

// TestScanStrictness pins the documented choices one by one.
func TestScanStrictness(t *testing.T) {
	hdr := `{"alg":"RS256"}`
	for _, tc := range []struct {
		name            string
		header, payload string
		want            error // nil: accepted
	}{
		{"escaped name is the name", hdr, `{"\u0069ss":"a"}`, nil},
		{"duplicate read claim", hdr, `{"iss":"a","iss":"b"}`, errDuplicate},
		{"duplicate read claim spelled with an escape", hdr, `{"iss":"a","\u0069ss":"a"}`, errDuplicate},
		{"duplicate read claim, first null", hdr, `{"iss":null,"iss":"a"}`, errDuplicate},
		{"duplicate ID token marker", hdr, `{"nonce":1,"nonce":1}`, errDuplicate},
		{"duplicate read header member", `{"alg":"RS256","alg":"none"}`, `{}`, errDuplicate},
		{"duplicate unread member", hdr, `{"x":1,"x":2}`, errDuplicate},
		{"header member name twice in the claims", hdr, `{"alg":1,"alg":2}`, errDuplicate},
		{"unread member that differs only in case", hdr, `{"ISS":1,"iss":"a"}`, errFoldedDuplicate},
		{"long s folds to s (encoding/json fills workspace from it)", hdr, `{"workspace":"a","workſpace":"b"}`, errFoldedDuplicate},
		{"Kelvin sign folds to k", hdr, "{\"kid_x\":1,\"\u212aID_X\":2}", errFoldedDuplicate},
		{"folded duplicate in a nested object", hdr, `{"realm_access":{"roles":["a"],"Roles":["admin"]}}`, errFoldedDuplicate},
		{"duplicate in an object inside an array", hdr, `{"x":[{"a":1,"a":2}]}`, errDuplicate},
		{"folded duplicate in the header", `{"alg":"RS256","Kid":"a","kid":"b"}`, `{}`, errFoldedDuplicate},
		{"same name in sibling objects is fine", hdr, `{"a":{"x":1},"b":{"x":2},"c":[{"x":3},{"x":4}]}`, nil},
		{"many members, one folded pair past the inline names", hdr, `{` + manyMembers(40) + `,"M39":1}`, errFoldedDuplicate},
		{"many distinct members", hdr, `{` + manyMembers(200) + `}`, nil},
		{"invalid UTF-8 in iss", hdr, "{\"iss\":\"a\xffb\"}", errBadUnicode},
		{"UTF-8 encoded surrogate in sub", hdr, "{\"sub\":\"\xed\xa0\x80\"}", errBadUnicode},
		{"overlong UTF-8 in an aud element", hdr, "{\"aud\":[\"a\",\"\xc0\xaf\"]}", errBadUnicode},
		{"lone high surrogate in scope", hdr, `{"scope":"read \ud800"}`, errBadUnicode},
		{"lone low surrogate in kid", `{"alg":"RS256","kid":"\udc00"}`, `{}`, errBadUnicode},
		{"high surrogate then no low in crit", `{"alg":"RS256","crit":["\ud800\u0041"]}`, `{}`, errBadUnicode},
		{"invalid UTF-8 in an unread member is accepted", hdr, "{\"x\":\"\xff\",\"nonce\":\"\xff\"}", nil},
		{"lone surrogate in an unread member is accepted", hdr, `{"x":["\ud800"],"at_hash":"\udc00"}`, nil},
		{"depth 64 is accepted", hdr, `{"x":` + nest(63) + `}`, nil},
		{"depth 65 is refused", hdr, `{"x":` + nest(64) + `}`, errTooDeep},
		{"depth 65 of objects is refused", hdr, `{"x":` + strings.Repeat(`{"a":`, 64) + `1` + strings.Repeat(`}`, 64) + `}`, errTooDeep},
		{"depth bomb in the header", `{"alg":"RS256","x":` + strings.Repeat("[", 1_000_000), `{}`, errTooDeep},
		{"depth bomb in the claims", hdr, `{"x":` + strings.Repeat(`{"a":[`, 1_000_000), errTooDeep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decodeBoth([]byte(tc.header), []byte(tc.payload), false)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

// TestScanDecodes checks decoded values against hand-written expectations,
// not only against the reference.
func TestScanDecodes(t *testing.T) {
	tk, _, err := decodeBoth([]byte(`{"\u0061lg":"E\u0053256","kid":"k\/1\u00e9","typ":"at+jwt","crit":[null,"b64"]}`),
		[]byte(` {"iss":"\ud83d\ude00\"\\\/\b\f\n\r\t\u0000","aud":["a",null,"b\u0063"],"scope":"  x\u0020y   z ","scp":[],
		"exp":-0,"nbf":1.5e0,"iat":1e-400,"c_hash":null} `), false)
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := Header{Alg: "ES256", Kid: "k/1é", Typ: "at+jwt", Crit: []string{"", "b64"}, HasCrit: true}
	wantClaims := Claims{
		Issuer: "😀\"\\/\b\f\n\r\t\x00", Audience: []string{"a", "", "bc"}, Scope: []string{"x", "y", "z"}, Scp: []string{},
		Expiry: time.Unix(0, 0), HasExpiry: true, NotBefore: time.Unix(1, 500_000_000), IssuedAt: time.Unix(0, 0), IDTokenMarkers: true,
	}
	if !reflect.DeepEqual(tk.Header, wantHeader) || !reflect.DeepEqual(tk.Claims, wantClaims) {
		t.Errorf("got\n%#v\n%#v\nwant\n%#v\n%#v", tk.Header, tk.Claims, wantHeader, wantClaims)
	}
	if tk.Claims.Scp == nil {
		t.Error("scp [] decoded to nil, want an empty list")
	}
	for in, want := range map[string][]string{"": {}, "   ": {}, "a": {"a"}, " a  b ": {"a", "b"}, "a\tb c": {"a\tb", "c"}} {
		if got := splitSP(in); !reflect.DeepEqual(got, want) || got == nil {
			t.Errorf("splitSP(%q) = %#v, want %#v", in, got, want)
		}
		if ref := strings.FieldsFunc(in, func(r rune) bool { return r == ' ' }); !reflect.DeepEqual(splitSP(in), ref) {
			t.Errorf("splitSP(%q) = %#v, FieldsFunc %#v", in, splitSP(in), ref)
		}
	}
}

// benchToken is shaped like the tokens of BenchmarkHandlerFirstSight.
func benchToken() string {
	s := tok(`{"alg":"RS256","kid":"Zq3x9kLmN0pQrStUvWxYzA","typ":"at+jwt"}`,
		`{"aud":"http://127.0.0.1:41234/","client_id":"client-1","exp":1767225600,"iat":1767222000,"iss":"http://127.0.0.1:41235","jti":"mP3kQ9xR2vT7yW1zA4bC6d","scope":"orders:read orders:write","sub":"user-1"}`)
	return s[:strings.LastIndexByte(s, '.')+1] + strings.Repeat("A", 342) // an RS256 signature's length
}

// TestParseAllocs keeps the decoding allocation-light: the Token, one
// buffer for its three decoded parts, the payload's string (every claim
// string read is a substring of it), the kid's copy, and the slices of aud
// and scope.
func TestParseAllocs(t *testing.T) {
	s := benchToken()
	if _, err := Parse(s); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = Parse(s) }); n > 5 {
		t.Errorf("Parse makes %v allocations, want at most 5", n)
	}
}

func BenchmarkParse(b *testing.B) {
	for _, impl := range []struct {
		name  string
		parse func(string) (*Token, error)
	}{{"scan", Parse}, {"encoding-json", refParse}} {
		b.Run(impl.name, func(b *testing.B) {
			s := benchToken()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := impl.parse(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
