package tggin

import (
	"github.com/gin-gonic/gin"

	"github.com/tokenguard/tokenguard"
)

// PrincipalKey is the gin context key under which New and RequireScopes
// store the *tokenguard.Principal (c.Get(PrincipalKey)). PrincipalFrom is
// the typed way to read it.
const PrincipalKey = "tokenguard.principal"

// PrincipalFrom returns the Principal that New or RequireScopes stored in c.
// When the gin context holds none it looks in the request's context, so it
// also finds the Principal of a tokenguard.Guard.Handler wrapping the whole
// engine. It reports false when neither has one.
func PrincipalFrom(c *gin.Context) (*tokenguard.Principal, bool) {
	if v, ok := c.Get(PrincipalKey); ok {
		if p, ok := v.(*tokenguard.Principal); ok && p != nil {
			return p, true
		}
	}
	if c.Request == nil {
		return nil, false
	}
	return tokenguard.PrincipalFrom(c.Request.Context())
}
