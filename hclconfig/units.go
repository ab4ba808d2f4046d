package hclconfig

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The parsers in this file are pure: they turn one string into one value or
// an error whose text is a full sentence a user can act on. The decode step
// wraps that text into a diagnostic that points at the attribute.

// The shapes below are loops, not package-level regexps: every process of
// the binary (the runner, its guard, the config reader) would compile a
// regexp at start and keep it, used or not.

// isAlnum reports whether b is an ASCII letter or digit.
func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// NetworkSystemd is the network of a listener written "systemd:NAME": the
// socket comes from socket activation (a systemd .socket unit's
// FileDescriptorName=NAME), and clusterrun never binds it itself.
const NetworkSystemd = "systemd"

// validFDName is systemd's rule for a FileDescriptorName= (fdname_is_valid),
// less spaces, which a unit file would need quoted.
func validFDName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// ValidName reports whether s may name an app or a listener.
func ValidName(s string) bool {
	// App names appear as "APP.N" on the command line and as log
	// prefixes, listener names are joined with ':' into LISTEN_FDNAMES, so
	// dots, colons and spaces are all out: [A-Za-z0-9][A-Za-z0-9_-]*.
	if s == "" || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '_' && s[i] != '-' {
			return false
		}
	}
	return true
}

// durationExamples ends every duration error, so each one says what is allowed.
const durationExamples = `Write a number with a unit, such as "250ms", "30s" or "1m30s"; the units are ns, us, ms, s, m and h.`

// parseDuration parses Go duration syntax ("250ms", "1m30s"). Negative
// values parse; whether they are allowed is the caller's rule.
func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("The duration is empty. " + durationExamples)
	}
	d, err := time.ParseDuration(s)
	if err == nil {
		return d, nil
	}
	msg := err.Error()
	switch {
	case isNumber(s):
		return 0, fmt.Errorf("The duration %q has no unit, so it is ambiguous. %s", s, durationExamples)
	case strings.Contains(msg, "unknown unit"):
		hint := ""
		if strings.HasSuffix(s, "d") {
			hint = ` Days are not a unit: write "24h" for one day.`
		}
		return 0, fmt.Errorf("The duration %q uses an unknown unit.%s %s", s, hint, durationExamples)
	case durationSyntax().MatchString(s):
		// Well-formed but rejected: time.ParseDuration only does that when
		// the value overflows int64 nanoseconds.
		return 0, fmt.Errorf("The duration %q is too long; the longest duration is about 292 years.", s)
	default:
		return 0, fmt.Errorf("The value %q is not a duration. %s", s, durationExamples)
	}
}

// durationSyntax is compiled on first use (see isAlnum).
var durationSyntax = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[-+]?([0-9]*(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+$`)
})

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// sizeUnits maps a lower-cased suffix to its multiplier. Single letters are
// binary, as in systemd's MemoryMax=, docker -m and pm2's max_memory_restart;
// the two-letter SI forms are decimal and the IEC forms binary, as their
// standards say.
var sizeUnits = map[string]float64{
	"":    1,
	"b":   1,
	"k":   1 << 10,
	"ki":  1 << 10,
	"kib": 1 << 10,
	"kb":  1e3,
	"m":   1 << 20,
	"mi":  1 << 20,
	"mib": 1 << 20,
	"mb":  1e6,
	"g":   1 << 30,
	"gi":  1 << 30,
	"gib": 1 << 30,
	"gb":  1e9,
	"t":   1 << 40,
	"ti":  1 << 40,
	"tib": 1 << 40,
	"tb":  1e12,
}

const sizeExamples = `Write a number of bytes ("1048576") or a number with a unit, such as "512MiB", "1GiB", "100MB" or "1G"; K, M, G and T alone, and KiB, MiB, GiB and TiB, are powers of 1024, while KB, MB, GB and TB are powers of 1000.`

// parseSize parses a memory size into bytes.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("The size is empty. " + sizeExamples)
	}
	i := strings.IndexFunc(t, func(r rune) bool {
		return (r < '0' || r > '9') && r != '.'
	})
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("The size %q is negative. %s", s, sizeExamples)
	}
	mult, ok := sizeUnits[strings.ToLower(unit)]
	if !ok || num == "" || strings.Count(num, ".") > 1 {
		return 0, fmt.Errorf("The value %q is not a size. %s", s, sizeExamples)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("The value %q is not a size. %s", s, sizeExamples)
	}
	b := math.Floor(f * mult)
	if b >= math.MaxInt64 {
		return 0, fmt.Errorf("The size %q is too large.", s)
	}
	return int64(b), nil
}

// maxUnixPath is the longest socket path bind(2) accepts on Linux: sun_path
// is 108 bytes and must end in a NUL.
const maxUnixPath = 107

// parseAddress splits a listener address into the network and the address
// the listeners package binds. A relative unix path resolves against dir,
// the config file's directory, so the file means the same from any cwd.
func parseAddress(addr, dir string) (network, address string, err error) {
	if name, ok := strings.CutPrefix(addr, "systemd:"); ok {
		if !validFDName(name) {
			return "", "", fmt.Errorf("The address %q does not name a socket systemd can pass: after \"systemd:\" comes the socket unit's FileDescriptorName=, 1 to 255 printable ASCII characters without \":\" or spaces, such as \"systemd:http\".", addr)
		}
		return NetworkSystemd, name, nil
	}
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		switch {
		case p == "":
			return "", "", errors.New(`The unix socket path is empty. Write "unix:" followed by a path, such as "unix:/run/app.sock" or "unix:app.sock" (relative to the config file).`)
		case strings.HasPrefix(p, "@"):
			return "", "", fmt.Errorf("The address %q names an abstract socket, which clusterrun does not support. Use a filesystem path, such as \"unix:/run/app.sock\".", addr)
		case strings.ContainsRune(p, 0):
			return "", "", errors.New("The unix socket path contains a NUL byte.")
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		p = filepath.Clean(p)
		if len(p) > maxUnixPath {
			return "", "", fmt.Errorf("The unix socket path %q is %d bytes long, but a socket path can be at most %d bytes. Choose a shorter path.", p, len(p), maxUnixPath)
		}
		return "unix", p, nil
	}

	const allowed = `Write "host:port" (such as "0.0.0.0:8080", "127.0.0.1:8080" or "[::1]:8080"), ":port" for every interface, ":0" for a random port, or "unix:/path/to.sock".`
	if i := strings.Index(addr, "://"); i >= 0 {
		return "", "", fmt.Errorf("The address %q has a scheme (%q); listener addresses have none. %s", addr, addr[:i+3], allowed)
	}
	host, port, err := splitHostPort(addr)
	if err != nil {
		if isDigits(addr) {
			return "", "", fmt.Errorf("The address %q has no host part. To listen on port %s of every interface write \":%s\".", addr, addr, addr)
		}
		return "", "", fmt.Errorf("The address %q is not valid: %s. %s", addr, err, allowed)
	}
	if port == "" {
		return "", "", fmt.Errorf("The address %q has no port. %s", addr, allowed)
	}
	n, err := strconv.Atoi(port)
	if !isDigits(port) || err != nil || n > 65535 {
		return "", "", fmt.Errorf("The port %q is not a port number; a port is a number from 0 to 65535 (0 picks a random free port).", port)
	}
	if host == "*" {
		return "", "", fmt.Errorf("The host \"*\" is not valid. To listen on every interface leave the host out: \":%s\".", port)
	}
	if host != "" && !validHost(host) {
		return "", "", fmt.Errorf("The host %q is neither an IP address nor a host name. %s", host, allowed)
	}
	return "tcp", joinHostPort(host, port), nil
}

// splitHostPort is net.SplitHostPort with messages that do not start with
// "address ...", since the caller already quotes the address.
func splitHostPort(addr string) (host, port string, err error) {
	if strings.HasPrefix(addr, "[") {
		end := strings.Index(addr, "]")
		if end < 0 {
			return "", "", errors.New("the \"[\" of the IPv6 address is not closed")
		}
		host, rest := addr[1:end], addr[end+1:]
		if !strings.HasPrefix(rest, ":") {
			return "", "", errors.New("the port is missing after the IPv6 address")
		}
		if _, err := netip.ParseAddr(host); err != nil || !strings.Contains(host, ":") {
			return "", "", fmt.Errorf("%q is not an IPv6 address", host)
		}
		return host, rest[1:], nil
	}
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return "", "", errors.New("the port is missing")
	}
	host, port = addr[:i], addr[i+1:]
	if strings.Contains(host, ":") {
		return "", "", errors.New("an IPv6 address must be written in brackets, as in \"[::1]:8080\"")
	}
	return host, port, nil
}

func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// validLabel reports whether s is one DNS label (a host name is labels
// joined by dots): [A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?.
func validLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if !isAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

func validHost(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if len(host) > 253 {
		return false
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	for _, label := range labels {
		if !validLabel(label) {
			return false
		}
	}
	// An all-digit last label is a mistyped IPv4 address ("300.1.1.1"),
	// never a top-level domain.
	return !isDigits(labels[len(labels)-1])
}

// isWildcardHost reports whether host binds every interface, so it overlaps
// with any other host on the same port.
func isWildcardHost(host string) bool {
	if host == "" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsUnspecified()
}
