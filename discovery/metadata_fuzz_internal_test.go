package discovery

import (
	"github.com/tokenguard/tokenguard/internal/jsontest"

	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard/internal/fetch"
)

// docMember is one member of a JSON object as sent.
type docMember = jsontest.Member

// exactMembers reads b as exactly one JSON object (jsontest.Members).
func exactMembers(b []byte) ([]docMember, bool) { return jsontest.Members(b) }

// memberKind says how a known metadata member is read.
type memberKind int

const (
	urlMember    memberKind = iota // a string that must be an acceptable URL when not empty
	textMember                     // any string
	listMember                     // an array of strings
	issuerMember                   // a string naming the issuer
)

// refDoc is a metadata document as a reader that matches member names
// exactly sees it: the known members by name, the rest as Extra. ok is false
// when the document is not one JSON object with distinct member names and
// known members of the right JSON type.
type refDoc struct {
	str   map[string]string
	list  map[string][]string
	extra map[string]json.RawMessage
}

func readRefDoc(body []byte, known map[string]memberKind) (d refDoc, ok bool) {
	ms, ok := exactMembers(body)
	if !ok {
		return d, false
	}
	d = refDoc{str: map[string]string{}, list: map[string][]string{}}
	seen := map[string]bool{}
	for _, m := range ms {
		if seen[m.Name] {
			return d, false
		}
		seen[m.Name] = true
		kind, isKnown := known[m.Name]
		switch {
		case !isKnown:
			if d.extra == nil {
				d.extra = map[string]json.RawMessage{}
			}
			d.extra[m.Name] = m.Raw
		case kind == listMember:
			var v []string
			if json.Unmarshal(m.Raw, &v) != nil {
				return d, false
			}
			d.list[m.Name] = v
		default:
			var v *string
			if json.Unmarshal(m.Raw, &v) != nil {
				return d, false
			}
			if v != nil {
				d.str[m.Name] = *v
			}
		}
	}
	return d, true
}

var serverMembers = map[string]memberKind{
	"issuer":                                        issuerMember,
	"authorization_endpoint":                        urlMember,
	"token_endpoint":                                urlMember,
	"jwks_uri":                                      urlMember,
	"registration_endpoint":                         urlMember,
	"introspection_endpoint":                        urlMember,
	"revocation_endpoint":                           urlMember,
	"scopes_supported":                              listMember,
	"response_types_supported":                      listMember,
	"grant_types_supported":                         listMember,
	"token_endpoint_auth_methods_supported":         listMember,
	"introspection_endpoint_auth_methods_supported": listMember,
	"code_challenge_methods_supported":              listMember,
	"id_token_signing_alg_values_supported":         listMember,
}

var resourceMembers = map[string]memberKind{
	"resource":                              issuerMember,
	"authorization_servers":                 listMember,
	"jwks_uri":                              urlMember,
	"scopes_supported":                      listMember,
	"bearer_methods_supported":              listMember,
	"resource_signing_alg_values_supported": listMember,
	"resource_name":                         textMember,
	"resource_documentation":                urlMember,
}

// fuzzIssuers are the issuers FuzzServerMetadata checks documents for.
var fuzzIssuers = []string{"https://as.example", "https://as.example/tenant/", "http://127.0.0.1:8080/realms/x"}

// FuzzServerMetadata: whatever the body of an RFC 8414 / OpenID discovery
// answer, parseServer returns metadata or an error starting "discovery:",
// never both, and it accepts exactly the documents an exact-name reader
// accepts: one JSON object, distinct member names, the known members of the
// right JSON type, issuer equal to the issuer asked about, every endpoint an
// acceptable absolute URL (https unless insecure). What it returns is what
// that reader reads: each known member's value, and every other member
// verbatim in Extra.
func FuzzServerMetadata(f *testing.F) {
	for _, s := range []string{
		`{"issuer":"https://as.example","jwks_uri":"https://as.example/jwks","token_endpoint":"https://as.example/token","scopes_supported":["a","b"],"x-custom":{"n":[1,2]}}`,
		`{"issuer":"https://as.example","issuer":"https://as.example"}`,
		`{"issuer":"https://as.example","Issuer":"https://evil.example"}`,
		`{"issuer":"https://as.example","jwks_uri":"http://as.example/jwks"}`,
		`{"issuer":"https://as.example","jwks_uri":"https://u:p@as.example/jwks#f"}`,
		`{"issuer":"https://as.example","scopes_supported":"a b"}`,
		`{"issuer":"https://as.example","token_endpoint":null,"scopes_supported":null}`,
		`{"issuer":"https://as.example"} {}`,
		`{"issuer":"https://as.example"}}`,
		`{"iss\u0075er":"https://as.example"}`,
		`{"issuer":"https://as.example/tenant/?q=1"}`,
		`[]`,
		`{`,
		``,
	} {
		f.Add([]byte(s), uint8(0), false)
	}
	f.Add([]byte(`{"issuer":"https://as.example/tenant/","introspection_endpoint":"https://as.example/tenant/introspect"}`), uint8(1), false)
	f.Add([]byte(`{"issuer":"http://127.0.0.1:8080/realms/x","jwks_uri":"http://127.0.0.1:8080/realms/x/certs"}`), uint8(2), true)
	f.Fuzz(func(t *testing.T, body []byte, which uint8, insecure bool) {
		issuer := fuzzIssuers[int(which)%len(fuzzIssuers)]
		c := &Client{InsecureAllowHTTP: insecure}
		const docURL = "https://as.example/.well-known/oauth-authorization-server"
		md, err := c.parseServer("authorization server metadata", docURL, issuer, body)
		ref, refOK := readRefDoc(body, serverMembers)
		if refOK {
			refOK = ref.str["issuer"] == issuer
			for name, kind := range serverMembers {
				if v := ref.str[name]; (kind == urlMember || kind == issuerMember) && v != "" {
					if _, err := fetch.CheckURL(v, insecure); err != nil {
						refOK = false
					}
				}
			}
			if u, err := fetch.CheckURL(issuer, true); err != nil || u.RawQuery != "" || u.ForceQuery {
				refOK = false
			}
		}
		if err != nil {
			if md != nil {
				t.Fatalf("metadata %+v and error %v", md, err)
			}
			if !strings.HasPrefix(err.Error(), "discovery: ") {
				t.Fatalf("error %q does not start with discovery:", err)
			}
			if refOK {
				t.Fatalf("document %q refused: %v", body, err)
			}
			return
		}
		if !refOK {
			t.Fatalf("document %q accepted as %+v", body, md)
		}
		got := map[string]string{
			"issuer": md.Issuer, "authorization_endpoint": md.AuthorizationEndpoint, "token_endpoint": md.TokenEndpoint,
			"jwks_uri": md.JWKSURI, "registration_endpoint": md.RegistrationEndpoint,
			"introspection_endpoint": md.IntrospectionEndpoint, "revocation_endpoint": md.RevocationEndpoint,
		}
		gotLists := map[string][]string{
			"scopes_supported": md.ScopesSupported, "response_types_supported": md.ResponseTypesSupported,
			"grant_types_supported": md.GrantTypesSupported, "token_endpoint_auth_methods_supported": md.TokenEndpointAuthMethodsSupported,
			"introspection_endpoint_auth_methods_supported": md.IntrospectionEndpointAuthMethodsSupported,
			"code_challenge_methods_supported":              md.CodeChallengeMethodsSupported,
			"id_token_signing_alg_values_supported":         md.IDTokenSigningAlgValuesSupported,
		}
		compareDoc(t, body, ref, got, gotLists, md.Extra)
		if md.URL != docURL {
			t.Fatalf("URL %q, want %q", md.URL, docURL)
		}
	})
}

// compareDoc checks what a parser returned against what the exact-name
// reader read.
func compareDoc(t *testing.T, body []byte, ref refDoc, got map[string]string, gotLists map[string][]string, extra map[string]json.RawMessage) {
	t.Helper()
	for name, v := range got {
		if v != ref.str[name] {
			t.Fatalf("document %q: %s is %q, the document says %q", body, name, v, ref.str[name])
		}
	}
	for name, v := range gotLists {
		if !slices.Equal(v, ref.list[name]) || (v == nil) != (ref.list[name] == nil) {
			t.Fatalf("document %q: %s is %#v, the document says %#v", body, name, v, ref.list[name])
		}
	}
	if len(extra) != len(ref.extra) {
		t.Fatalf("document %q: Extra %q, want %q", body, extra, ref.extra)
	}
	for name, raw := range ref.extra {
		if !bytes.Equal(extra[name], raw) {
			t.Fatalf("document %q: Extra[%q] = %q, want %q", body, name, extra[name], raw)
		}
	}
}

// bodyTransport answers every request with one JSON body, without a network.
type bodyTransport struct{ body []byte }

func (bt *bodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode:    http.StatusOK,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(bt.body)),
		ContentLength: int64(len(bt.body)),
		Request:       r,
	}, nil
}

// FuzzResourceMetadata: whatever an RFC 9728 protected resource metadata
// document holds, FetchResource (through an HTTP client that answers with
// it) returns metadata or an error starting "discovery:", never both, and
// accepts exactly the documents an exact-name reader accepts: one JSON
// object, distinct member names, known members of the right JSON type,
// resource naming the resource asked about (an empty path and "/" being
// the same), at least one authorization server, each an acceptable issuer
// identifier (absolute, no query, https unless insecure), jwks_uri and
// resource_documentation acceptable URLs when present. What it returns is
// what that reader reads.
func FuzzResourceMetadata(f *testing.F) {
	for _, s := range []string{
		`{"resource":"https://rs.example","authorization_servers":["https://as.example"],"jwks_uri":"https://rs.example/jwks","scopes_supported":["read"],"resource_name":"RS","x":[null]}`,
		`{"resource":"https://rs.example/","authorization_servers":["https://as.example/t/1","https://as.example/t/2"]}`,
		`{"resource":"https://rs.example","authorization_servers":[]}`,
		`{"resource":"https://rs.example","authorization_servers":["https://as.example?x=1"]}`,
		`{"resource":"https://rs.example","authorization_servers":["http://as.example"]}`,
		`{"resource":"https://rs.example","authorization_servers":["https://as.example"],"resource_documentation":"javascript:alert(1)"}`,
		`{"resource":"https://other.example","authorization_servers":["https://as.example"]}`,
		`{"resource":"https://rs.example","Resource":"x","authorization_servers":["https://as.example"]}`,
		`{"resource":"https://rs.example","authorization_servers":["https://as.example"],"authorization_servers":["https://evil.example"]}`,
		`{"resource":"https://rs.example","authorization_servers":"https://as.example"}`,
		`{"resource":null,"authorization_servers":["https://as.example"]}`,
		`{"resource":"https://rs.example","authorization_servers":["https://as.example"]}]`,
		`null`,
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte(`{"resource":"https://rs.example","authorization_servers":["http://127.0.0.1:9/as"]}`), true)
	const resource = "https://rs.example"
	const metadataURL = "https://rs.example/.well-known/oauth-protected-resource"
	f.Fuzz(func(t *testing.T, body []byte, insecure bool) {
		c := &Client{InsecureAllowHTTP: insecure, HTTPClient: &http.Client{Transport: &bodyTransport{body}}}
		md, err := c.FetchResource(context.Background(), metadataURL, resource)
		ref, refOK := readRefDoc(body, resourceMembers)
		if refOK {
			r := ref.str["resource"]
			refOK = (r == resource || r == resource+"/") && len(ref.list["authorization_servers"]) > 0
			for _, as := range ref.list["authorization_servers"] {
				if u, err := fetch.CheckURL(as, insecure); err != nil || u.RawQuery != "" || u.ForceQuery {
					refOK = false
				}
			}
			for _, name := range []string{"jwks_uri", "resource_documentation"} {
				if v := ref.str[name]; v != "" {
					if _, err := fetch.CheckURL(v, insecure); err != nil {
						refOK = false
					}
				}
			}
		}
		if len(body) > 1<<20 {
			refOK = false // MaxBytes
		}
		if err != nil {
			if md != nil {
				t.Fatalf("metadata %+v and error %v", md, err)
			}
			if !strings.HasPrefix(err.Error(), "discovery: ") {
				t.Fatalf("error %q does not start with discovery:", err)
			}
			if refOK {
				t.Fatalf("document %q refused: %v", body, err)
			}
			return
		}
		if !refOK {
			t.Fatalf("document %q accepted as %+v", body, md)
		}
		got := map[string]string{
			"resource": md.Resource, "jwks_uri": md.JWKSURI, "resource_name": md.ResourceName,
			"resource_documentation": md.ResourceDocumentation,
		}
		gotLists := map[string][]string{
			"authorization_servers": md.AuthorizationServers, "scopes_supported": md.ScopesSupported,
			"bearer_methods_supported":              md.BearerMethodsSupported,
			"resource_signing_alg_values_supported": md.ResourceSigningAlgValuesSupported,
		}
		compareDoc(t, body, ref, got, gotLists, md.Extra)
		if md.URL != metadataURL {
			t.Fatalf("URL %q, want %q", md.URL, metadataURL)
		}
		if !reflect.DeepEqual(md.AuthorizationServers, ref.list["authorization_servers"]) {
			t.Fatalf("authorization_servers %q, want %q", md.AuthorizationServers, ref.list["authorization_servers"])
		}
	})
}
