package hclconfig

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// addrPlace is a socket the runner binds, for the overlap check.
type addrPlace struct {
	name       string // `listener "http"`, or "the metrics block"
	listener   bool
	network    string
	address    string
	host, port string // tcp
	at         hcl.Range
	def        hcl.Range
}

func addressPlaces(cfg *Config, srcs *sources) []addrPlace {
	var out []addrPlace
	for i, l := range cfg.Listeners {
		ls := srcs.listeners[i]
		if l.Address == "" {
			continue
		}
		out = append(out, addrPlace{
			name: l.Name, listener: true, network: l.Network, address: l.Address,
			host: ls.host, port: ls.port, at: ls.raw.Address.Range(), def: l.DefRange,
		})
	}
	if m := srcs.metrics; m != nil && cfg.Metrics.Address != "" {
		out = append(out, addrPlace{
			network: "tcp", address: cfg.Metrics.Address, host: m.host, port: m.port,
			at: m.raw.Address.Range(), def: m.raw.DefRange,
		})
	}
	return out
}

// checkAddresses finds sockets that would bind the same address. Two tcp
// addresses clash when their ports match and their hosts match or either
// is a wildcard: binding 0.0.0.0:8080 after 127.0.0.1:8080 fails, and with
// reuseport it would silently split one port's traffic between two
// listeners. "localhost" is 127.0.0.1 and ::1, as every resolver has it
// (names are not looked up: a reload must not wait on DNS). Port 0 never
// clashes; each ":0" gets its own random port. Each clash is reported at
// the later address, naming the earlier one's position.
func checkAddresses(addrs []addrPlace) hcl.Diagnostics {
	var diags hcl.Diagnostics
	type portUse struct {
		first, wildcard int
		hosts           map[string]int
	}
	ports := make(map[string]*portUse)
	paths := make(map[string]int)
	for i, a := range addrs {
		prev := -1
		if a.network == "unix" || a.network == NetworkSystemd {
			// Two listeners cannot share one socket file, nor one socket
			// that systemd passes.
			if j, ok := paths[a.network+":"+a.address]; ok {
				prev = j
			} else {
				paths[a.network+":"+a.address] = i
			}
		} else if a.port != "0" {
			u := ports[a.port]
			if u == nil {
				u = &portUse{first: -1, wildcard: -1, hosts: make(map[string]int)}
				ports[a.port] = u
			}
			keys, wildcard := hostKeys(a.host)
			switch {
			case wildcard:
				prev = u.first
			case u.wildcard >= 0:
				prev = u.wildcard
			default:
				for _, k := range keys {
					if j, ok := u.hosts[k]; ok && (prev < 0 || j < prev) {
						prev = j
					}
				}
			}
			if u.first < 0 {
				u.first = i
			}
			if wildcard && u.wildcard < 0 {
				u.wildcard = i
			}
			for _, k := range keys {
				if _, ok := u.hosts[k]; !ok {
					u.hosts[k] = i
				}
			}
		}
		if prev >= 0 {
			diags = append(diags, overlap(addrs[prev], a))
		}
	}
	return diags
}

// hostKeys are the addresses a host binds, for the overlap index.
func hostKeys(host string) (keys []string, wildcard bool) {
	if isWildcardHost(host) {
		return nil, true
	}
	if isLocalhost(host) {
		return []string{"127.0.0.1", "::1"}, false
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return []string{ip.Unmap().WithZone("").String()}, false
	}
	return []string{strings.ToLower(host)}, false
}

func isLocalhost(host string) bool {
	return strings.EqualFold(strings.TrimSuffix(host, "."), "localhost")
}

func overlap(prev, a addrPlace) *hcl.Diagnostic {
	name := func(p addrPlace) string {
		if p.listener {
			return fmt.Sprintf("listener %q", p.name)
		}
		return "the metrics block"
	}
	this := strings.ToUpper(name(a)[:1]) + name(a)[1:]
	var detail string
	switch {
	case a.address == prev.address:
		detail = fmt.Sprintf("%s uses address %q, which %s (at %s) already binds. Give each listener its own address, or list one listener in several apps to share a socket.", this, a.address, name(prev), posString(prev.def))
	case a.network == "tcp" && (isWildcardHost(a.host) || isWildcardHost(prev.host)):
		detail = fmt.Sprintf("%s (%q) and %s (%q, at %s) bind the same port, and one of them listens on every interface, so they overlap. Use different ports, or list one listener in several apps to share a socket.", this, a.address, name(prev), prev.address, posString(prev.def))
	case isLocalhost(a.host) || isLocalhost(prev.host):
		detail = fmt.Sprintf("%s (%q) and %s (%q, at %s) bind the same port, and \"localhost\" is 127.0.0.1 and ::1, so they overlap. Use different ports, or list one listener in several apps to share a socket.", this, a.address, name(prev), prev.address, posString(prev.def))
	default:
		detail = fmt.Sprintf("%s (%q) and %s (%q, at %s) are the same address written two ways. Use different ports, or list one listener in several apps to share a socket.", this, a.address, name(prev), prev.address, posString(prev.def))
	}
	if !a.listener || !prev.listener {
		detail = strings.Replace(detail, ", or list one listener in several apps to share a socket", "", 1)
		detail = strings.Replace(detail, "Give each listener its own address.", "Give the metrics block its own address.", 1)
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Duplicate listener address",
		Detail:   detail,
		Subject:  a.at.Ptr(),
	}
}
