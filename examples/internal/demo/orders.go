package demo

import (
	"slices"
	"sync"
)

// Order is one order of the demo API.
type Order struct {
	ID    int    `json:"id"`
	Owner string `json:"owner"`
}

// OrderList is the body of GET /orders: who asked, and their orders.
type OrderList struct {
	Subject string  `json:"subject"`
	Orders  []Order `json:"orders"`
}

// Orders is the demo API's in-memory store, the same for every framework:
// the examples differ only in how they route and protect it. It is safe for
// concurrent use; its zero value is empty and ready.
type Orders struct {
	mu   sync.Mutex
	next int
	all  []Order
}

// List returns owner's orders, never nil (so it encodes as []).
func (o *Orders) List(owner string) []Order {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := []Order{}
	for _, ord := range o.all {
		if ord.Owner == owner {
			out = append(out, ord)
		}
	}
	return slices.Clip(out)
}

// Create records a new order for owner and returns it.
func (o *Orders) Create(owner string) Order {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.next++
	ord := Order{ID: o.next, Owner: owner}
	o.all = append(o.all, ord)
	return ord
}
