// Package jsontest holds reference readers of JSON that tests hold the
// library's parsers to: exact member names, duplicates kept, and the
// names that fold together as encoding/json matches them. It is for tests
// only.
package jsontest

import (
	"bytes"
	"encoding/json"
)

// Member is one member of a JSON object as sent: exact name (decoded as
// json.Decoder.Token decodes it), raw value.
type Member struct {
	Name string
	Raw  json.RawMessage
}

// Members reads b as exactly one JSON object (nothing after it) and
// returns its members in order, duplicates kept; ok is false otherwise.
func Members(b []byte) (ms []Member, ok bool) {
	if !json.Valid(b) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		ms = append(ms, Member{tok.(string), raw})
	}
	return ms, true
}

// FoldedDuplicate reports whether any object in the JSON text b, at any
// depth, has two member names equal under bytes.EqualFold (or equal), as
// json.Decoder.Token decodes them. It reports false for text that is not
// valid JSON.
func FoldedDuplicate(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	var stack [][]string // names per open object; nil for an open array
	inObject := func() bool { return len(stack) > 0 && stack[len(stack)-1] != nil }
	expectName := true
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, []string{})
				expectName = true
				continue
			case '[':
				stack = append(stack, nil)
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
		case string:
			if inObject() && expectName {
				names := stack[len(stack)-1]
				for _, n := range names {
					if bytes.EqualFold([]byte(n), []byte(v)) {
						return true
					}
				}
				stack[len(stack)-1] = append(names, v)
				expectName = false
				continue
			}
		}
		// A value ended: the next token of an object is a name.
		expectName = inObject()
	}
}
