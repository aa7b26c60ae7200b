package tokenguard

import "testing"

// Copies of a Principal whose lists are empty but have spare capacity
// must not share an array: two requests' appends would write to one.
func TestCloneEmptyListsDoNotShare(t *testing.T) {
	p := &Principal{Audience: make([]string, 0, 2), Scopes: make([]string, 0, 2), Roles: make([]string, 0, 2)}
	a, b := p.clone(), p.clone()
	a.Scopes, a.Roles, a.Audience = append(a.Scopes, "mine"), append(a.Roles, "mine"), append(a.Audience, "mine")
	b.Scopes, b.Roles, b.Audience = append(b.Scopes, "admin"), append(b.Roles, "admin"), append(b.Audience, "admin")
	if a.Scopes[0] != "mine" || a.Roles[0] != "mine" || a.Audience[0] != "mine" {
		t.Errorf("one copy's append changed another's list: %v %v %v", a.Scopes, a.Roles, a.Audience)
	}
	if a.Scopes == nil || len(p.clone().Scopes) != 0 || p.clone().Scopes == nil {
		t.Error("an empty list must stay empty, not nil")
	}
	full := &Principal{Audience: []string{"x"}, Scopes: []string{"s"}, Roles: []string{"r"}}
	c := full.clone()
	c.Audience = append(c.Audience, "y")
	c.Scopes = append(c.Scopes, "t")
	if c.Scopes[0] != "s" || c.Roles[0] != "r" || full.Audience[0] != "x" {
		t.Errorf("lists of one copy overlap: %v %v %v", c.Audience, c.Scopes, c.Roles)
	}
}
