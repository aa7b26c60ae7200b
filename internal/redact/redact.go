// Package redact finds a bearer token, or a piece of it, in text that is
// about to reach an error or a log.
package redact

import "strings"

// Window is the length of a piece of a token that counts as the token:
// shorter runs of token characters occur in ordinary text.
const Window = 16

// Leaks reports whether s contains token, or any Window bytes of it.
func Leaks(s, token string) bool {
	if token == "" || s == "" {
		return false
	}
	if len(token) < Window {
		return strings.Contains(s, token)
	}
	for i := 0; i+Window <= len(s); i++ {
		if strings.Contains(token, s[i:i+Window]) {
			return true
		}
	}
	return false
}

// Withheld replaces an error text that contained the token.
const Withheld = "detail withheld: it contained the token"
