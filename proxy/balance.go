package proxy

import "github.com/clusterrun/clusterrun/route"

// The routable set, its balance policies and leases are package route's,
// which http mode shares; these are its names as the proxy's callers know
// them.

// Balance is how a new connection chooses among the routable backends.
type Balance = route.Balance

const (
	// LeastConn picks the backend with the fewest open connections (dials
	// in flight included); ties rotate, so equal backends share the load.
	LeastConn = route.LeastLoad
	// RoundRobin takes the backends in turn, whatever their load.
	RoundRobin = route.RoundRobin
	// IPHash keeps each client address on one backend: rendezvous hashing
	// with a bound on load (route.IPHash).
	IPHash = route.IPHash
)

// Backend is one instance's private address.
type Backend = route.Backend
