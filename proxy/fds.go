package proxy

import "github.com/clusterrun/clusterrun/route"

// DefaultReserve is the number of descriptors an FDBudget keeps for the
// rest of the process unless told otherwise.
const DefaultReserve = route.DefaultReserve

// fdsPerConn is what one proxied connection holds: the client's socket and
// the backend's. A direction in a bulk transfer holds a splice pipe too,
// claimed from the budget on its own while it lasts (loop.getPipe).
const fdsPerConn = 2

// FDBudget is the share of the process's descriptors that its proxies (and
// http listeners) may hold together (route.FDBudget).
type FDBudget = route.FDBudget

// NewFDBudget returns a budget that leaves reserve descriptors to the rest
// of the process.
func NewFDBudget(reserve int) *FDBudget { return route.NewFDBudget(reserve) }
