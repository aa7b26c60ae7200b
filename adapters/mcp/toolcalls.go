package tgmcp

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// How a POST body's tool calls are found.
//
// The SDK reads a body (v1.8.0, mcp.readBatch) as a JSON array of
// messages if it decodes as one, and otherwise as a single message
// (jsonrpc.DecodeMessage); a tools/call's params are then decoded into
// CallToolParamsRaw. Its decoder is github.com/segmentio/encoding/json
// with case-sensitive field names, on which:
//
//   - of two equal keys the last one wins;
//   - a key that differs only in case ("Method", "NAME") is ignored;
//   - a value followed by anything at all ({...} garbage, {...}{...},
//     [...] x) is accepted, the rest ignored;
//   - invalid UTF-8 in strings becomes U+FFFD.
//
// The middleware reads the body more strictly than that: it must be
// valid UTF-8 and exactly one JSON value (encoding/json's json.Valid),
// and in each message, and in the params of each tools/call, the keys
// method, params and name must each appear at most once, spelled exactly,
// with no other key equal to them under Unicode case folding
// (strings.EqualFold: "Method", "PARAMS", "paramſ"), since a case-
// insensitive decoder (encoding/json's) would take those. A method equal
// to "tools/call" under case folding counts as a tools/call, though the
// SDK dispatches on the exact name only. Whatever such a reading finds is
// also what the SDK finds.
//
// A body that cannot be read so (toolCalls reports !ok) is refused unless
// the SDK is certain not to read a message from it either: it is empty,
// or it begins with '{' (after JSON white space), so it is no batch, and
// jsonrpc.DecodeMessage, the SDK's own decoder, rejects it. Everything
// else that the strict reading rejects (trailing data after a message,
// duplicate or case-folded keys, a batch that is not strictly valid, a
// byte order mark, a tools/call whose params or name are not an object
// and a string) gets a 400: it names a tool ambiguously, or in a form no
// client sends. What the SDK rejects on its own gets the SDK's answer.

// toolCalls returns the names of the tools that body, a JSON-RPC message
// or batch, calls, in order and each once. ok is false when body cannot
// be read strictly enough to know them for certain (see above).
func toolCalls(body []byte) (names []string, ok bool) {
	if !utf8.Valid(body) || !json.Valid(body) {
		return nil, false
	}
	b := bytes.TrimLeft(body, " \t\r\n")
	switch b[0] { // json.Valid: not empty
	case '{':
		return messageCall(b, nil)
	case '[':
		var elems []json.RawMessage
		if json.Unmarshal(b, &elems) != nil {
			return nil, false
		}
		for _, e := range elems {
			if e = bytes.TrimLeft(e, " \t\r\n"); len(e) > 0 && e[0] == '{' { // anything else makes the SDK reject the batch
				if names, ok = messageCall(e, names); !ok {
					return nil, false
				}
			}
		}
		return names, true
	}
	return nil, true // a string, number, true, false or null: no message
}

// messageCall appends to names the tool that msg, one JSON-RPC message (a
// valid JSON object), calls, if it is a tools/call and names a tool not
// in names yet.
func messageCall(msg []byte, names []string) ([]string, bool) {
	fields, ok := members(msg, "method", "params")
	if !ok {
		return nil, false
	}
	method, params := fields[0], fields[1]
	if method == nil {
		return names, true // no method: a response, which runs nothing
	}
	var m string
	if method[0] != '"' && string(method) != "null" || json.Unmarshal(method, &m) != nil {
		return nil, false
	}
	if !strings.EqualFold(m, methodCallTool) {
		return names, true
	}
	if params == nil || string(params) == "null" {
		return names, true // the SDK refuses a tools/call without params
	}
	if params[0] != '{' {
		return nil, false
	}
	fields, ok = members(params, "name")
	if !ok {
		return nil, false
	}
	var name string
	if raw := fields[0]; raw != nil {
		if raw[0] != '"' || json.Unmarshal(raw, &name) != nil {
			return nil, false
		}
	}
	for _, n := range names {
		if n == name {
			return names, true
		}
	}
	return append(names, name), true
}

// members returns the values of the keys want in obj, a valid JSON
// object (nil for a key that is absent). ok is false when a key of obj is
// one of want twice, or equals one under case folding without being it.
func members(obj []byte, want ...string) (values []json.RawMessage, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	values = make([]json.RawMessage, len(want))
	if _, err := dec.Token(); err != nil { // '{'
		return nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		for i, w := range want {
			if !strings.EqualFold(key, w) {
				continue
			}
			if key != w || values[i] != nil {
				return nil, false
			}
			values[i] = bytes.TrimLeft(v, " \t\r\n")
		}
	}
	return values, true
}

// sdkMayRead reports whether the SDK might read a message from body,
// which toolCalls could not read.
func sdkMayRead(body []byte) bool {
	b := bytes.TrimLeft(body, " \t\r\n")
	if len(b) == 0 {
		return false // the SDK refuses an empty body
	}
	if b[0] != '{' {
		return true // perhaps a batch, or something the SDK reads more leniently
	}
	_, err := jsonrpc.DecodeMessage(body)
	return err == nil
}

// methodCallTool is the JSON-RPC method of a tool call.
const methodCallTool = "tools/call"
