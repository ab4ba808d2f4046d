//go:build !linux

package route

import "net/netip"

// acceptQueueCap is not known here: see Options.MaxPerInstance.
func acceptQueueCap(netip.AddrPort) int { return 0 }
