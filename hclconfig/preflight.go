package hclconfig

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Preflight: what the file asks of the machine. `check` must refuse what
// `up` would refuse or crash-loop on, so Load checks here, with the
// position of the attribute at fault, what would fail at start: sockets
// that overlap or cannot be bound, accounts that do not exist or cannot be
// switched to, a dir or a program that is not there. Everything it asks of
// the machine goes through host, which tests replace.

// host is what preflight asks of the machine.
type host struct {
	// euid is the runner's effective user id.
	euid func() int
	// capEff is the effective capability set; ok is false where it is not
	// known (not Linux).
	capEff func() (caps uint64, ok bool)
	// unprivilegedPortStart is the lowest port anyone may bind; ok is false
	// where it is not known.
	unprivilegedPortStart func() (port int, ok bool)
	// lookupUser and lookupGroup fail for an account the machine does not
	// have; a name or a numeric id.
	lookupUser  func(name string) error
	lookupGroup func(name string) error
	// isDir fails unless path is a directory: with an error matching
	// fs.ErrNotExist when nothing is there, errNotDir when something else.
	isDir func(path string) error
	// isExecutable fails unless path is an executable file: fs.ErrNotExist,
	// errNotFile (a directory) or errNotExecutable.
	isExecutable func(path string) error
	// lookPath looks for prog in the directories of pathVar (a PATH
	// value), as the exec will; searched counts the directories tried.
	lookPath func(prog, pathVar string) (searched int, found bool)
}

var (
	errNotDir        = errors.New("not a directory")
	errNotFile       = errors.New("a directory, not a file")
	errNotExecutable = errors.New("not executable")
)

// Linux capability bits (linux/capability.h).
const (
	capSetgid         = 6
	capSetuid         = 7
	capNetBindService = 10
)

// sys is the machine Load checks against.
var sys = realHost()

func realHost() *host {
	h := &host{
		euid:                  os.Geteuid,
		capEff:                readCapEff,
		unprivilegedPortStart: readUnprivilegedPortStart,
		lookupUser: func(name string) error {
			if _, err := user.Lookup(name); err != nil {
				if _, idErr := user.LookupId(name); isDigits(name) && idErr == nil {
					return nil
				}
				return err
			}
			return nil
		},
		lookupGroup: func(name string) error {
			if _, err := user.LookupGroup(name); err != nil {
				if _, idErr := user.LookupGroupId(name); isDigits(name) && idErr == nil {
					return nil
				}
				return err
			}
			return nil
		},
		isDir: func(path string) error {
			fi, err := os.Stat(path)
			switch {
			case err != nil:
				return err
			case !fi.IsDir():
				return errNotDir
			}
			return nil
		},
		isExecutable: func(path string) error {
			fi, err := os.Stat(path)
			switch {
			case err != nil:
				return err
			case fi.IsDir():
				return errNotFile
			case fi.Mode()&0o111 == 0:
				return errNotExecutable
			}
			return nil
		},
	}
	h.lookPath = func(prog, pathVar string) (int, bool) { return searchPath(h.isExecutable, prog, pathVar) }
	return h
}

// searchPath looks for prog in the absolute directories of pathVar. A
// relative entry ("." or "") would resolve against the app's dir, and
// os/exec refuses such a result (exec.ErrDot), so it is skipped.
func searchPath(isExecutable func(string) error, prog, pathVar string) (searched int, found bool) {
	for _, dir := range filepath.SplitList(pathVar) {
		if !filepath.IsAbs(dir) {
			continue
		}
		searched++
		if isExecutable(filepath.Join(dir, prog)) == nil {
			return searched, true
		}
	}
	return searched, false
}

// readCapEff reads the effective capability set from /proc/self/status.
func readCapEff() (uint64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return caps, err == nil
		}
	}
	return 0, false
}

func readUnprivilegedPortStart() (int, bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		// Kernels before 4.11 have no setting and a fixed 1024; elsewhere
		// (macOS lets anyone bind any port) the rule is not known.
		return 1024, runtime.GOOS == "linux"
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return n, err == nil
}

// hasCap reports whether the runner has every capability in bits (root
// counts as having them all).
func (h *host) hasCap(bits ...uint) bool {
	if h.euid() == 0 {
		return true
	}
	caps, ok := h.capEff()
	if !ok {
		return false
	}
	for _, b := range bits {
		if caps&(1<<b) == 0 {
			return false
		}
	}
	return true
}

// appPlace is where the values preflight checks were written for one app.
type appPlace struct {
	command hcl.Range  // the program: the first list element, or the string
	dir     *hcl.Range // nil when dir was not written
	user    *hcl.Range
	group   *hcl.Range
}

// places locates, for preflight, what a Config was decoded from.
type places struct {
	apps      []appPlace  // parallel to Config.Apps
	listeners []hcl.Range // each listener's address, parallel to Config.Listeners
	metrics   hcl.Range
}

// hclPlaces collects the places of a cluster.hcl.
func hclPlaces(cfg *Config, srcs *sources) places {
	var p places
	for _, as := range srcs.apps {
		ap := appPlace{command: as.command}
		if as.dir != nil {
			ap.dir = as.dir.Range().Ptr()
		}
		if !absent(as.raw.User) {
			ap.user = as.raw.User.Range().Ptr()
		}
		if !absent(as.raw.Group) {
			ap.group = as.raw.Group.Range().Ptr()
		}
		p.apps = append(p.apps, ap)
	}
	for _, ls := range srcs.listeners {
		r := ls.raw.DefRange
		if ls.raw.Address != nil {
			r = ls.raw.Address.Range()
		}
		p.listeners = append(p.listeners, r)
	}
	if srcs.metrics != nil && srcs.metrics.raw.Address != nil {
		p.metrics = srcs.metrics.raw.Address.Range()
	}
	return p
}

// preflight checks cfg against the machine h.
func preflight(cfg *Config, at places, h *host) hcl.Diagnostics {
	var diags hcl.Diagnostics
	users := make(map[string]error)
	groups := make(map[string]error)
	// Many apps run the same program: look each up once.
	lookups := make(map[[2]string]lookPathResult)
	cached, lookPath := *h, h.lookPath
	cached.lookPath = func(prog, pathVar string) (int, bool) {
		key := [2]string{prog, pathVar}
		r, ok := lookups[key]
		if !ok {
			r.searched, r.found = lookPath(prog, pathVar)
			lookups[key] = r
		}
		return r.searched, r.found
	}
	h = &cached
	for i, a := range cfg.Apps {
		p := at.apps[i]
		diags = append(diags, checkAccount(h, a, "user", a.User, p.user, users, h.lookupUser)...)
		diags = append(diags, checkAccount(h, a, "group", a.Group, p.group, groups, h.lookupGroup)...)
		dirOK := true
		if p.dir != nil {
			if err := h.isDir(a.Dir); err != nil {
				dirOK = false
				detail := fmt.Sprintf("The dir of app %q, %s, does not exist. Create it, or correct the path; a relative dir is relative to the config file.", a.Name, a.Dir)
				if !errors.Is(err, fs.ErrNotExist) {
					detail = fmt.Sprintf("The dir of app %q, %s, cannot be used: %s. The app runs in this directory, so it must be one.", a.Name, a.Dir, unwrapPathError(err))
				}
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing dir", Detail: detail, Subject: p.dir})
			}
		}
		if dirOK {
			if d := checkProgram(h, a, p.command); d != nil {
				diags = append(diags, d)
			}
		}
	}

	privileged, known := h.unprivilegedPortStart()
	canBindLow := !known || h.hasCap(capNetBindService)
	for i, l := range cfg.Listeners {
		what := fmt.Sprintf("Listener %q", l.Name)
		if cfg.Procfile {
			what = "The web line's proxy listener (on foreman's port: PORT from .env or the environment, else 5000)"
		}
		diags = append(diags, checkBind(h, what, l.Network, l.Address, at.listeners[i], privileged, canBindLow)...)
	}
	if m := cfg.Metrics; m != nil && m.Address != "" {
		diags = append(diags, checkBind(h, "The metrics block", "tcp", m.Address, at.metrics, privileged, canBindLow)...)
	}
	return diags
}

type lookPathResult struct {
	searched int
	found    bool
}

// checkAccount checks a user or group attribute: the account must exist,
// and only root (or a process with CAP_SETUID and CAP_SETGID) can start a
// process as another account.
func checkAccount(h *host, a *App, kind, name string, at *hcl.Range, cache map[string]error, lookup func(string) error) hcl.Diagnostics {
	if name == "" || at == nil {
		return nil
	}
	err, seen := cache[name]
	if !seen {
		err = lookup(name)
		cache[name] = err
	}
	if err != nil {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Unknown " + kind,
			Detail:   fmt.Sprintf("App %q runs as %s %q, but this machine has no such %s. Create it, correct the name, or remove %s to run the app as the runner's own %s.", a.Name, kind, name, kind, kind, kind),
			Subject:  at,
		}}
	}
	if !h.hasCap(capSetuid, capSetgid) {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot switch " + kind,
			Detail:   fmt.Sprintf("App %q runs as %s %q, but clusterrun runs as uid %d, not root, and only root can start a process as another account. Run clusterrun as root (it binds the sockets first, then starts the app as this %s), or remove %s to run the app as yourself.", a.Name, kind, name, h.euid(), kind, kind),
			Subject:  at,
		}}
	}
	return nil
}

// checkProgram checks that the program of a's command can be found, as the
// exec would look for it: a name without "/" on the app's PATH, anything
// else relative to the app's dir. A path is not checked when the app has
// depends_on, because a build step it waits for may create it.
func checkProgram(h *host, a *App, at hcl.Range) *hcl.Diagnostic {
	prog, viaShell := program(a)
	if prog == "" {
		return nil
	}
	runs := fmt.Sprintf("App %q runs %q", a.Name, prog)
	if viaShell {
		runs += " (the program of its command string)"
	}
	if strings.Contains(prog, "/") {
		if len(a.DependsOn) > 0 {
			return nil
		}
		path := prog
		if !filepath.IsAbs(path) {
			path = filepath.Join(a.Dir, path)
		}
		err := h.isExecutable(path)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, fs.ErrNotExist):
			return &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Program not found",
				Detail:   fmt.Sprintf("%s, but %s does not exist. Correct the path (a relative one is relative to the app's dir), or, if another app builds it, add that app to depends_on.", runs, path),
				Subject:  at.Ptr(),
			}
		case errors.Is(err, errNotExecutable):
			return &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Program not executable",
				Detail:   fmt.Sprintf("%s, but %s is not executable. Make it so (chmod +x %s), or run it through its interpreter, such as [\"python3\", %q].", runs, path, path, prog),
				Subject:  at.Ptr(),
			}
		default:
			return &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Program not executable",
				Detail:   fmt.Sprintf("%s, but %s cannot be run: it is %s.", runs, path, unwrapPathError(err)),
				Subject:  at.Ptr(),
			}
		}
	}

	pathVar, whose := a.Env["PATH"], fmt.Sprintf("app %q's PATH (from its env)", a.Name)
	if _, ok := a.Env["PATH"]; !ok {
		pathVar, whose = osEnv()["PATH"], "the runner's PATH"
	}
	searched, found := h.lookPath(prog, pathVar)
	if found {
		return nil
	}
	where := fmt.Sprintf("was not found in any of the %d directories on %s", searched, whose)
	switch {
	case pathVar == "":
		where = fmt.Sprintf("cannot be looked up: %s is empty", whose)
	case searched == 0:
		where = fmt.Sprintf("cannot be looked up: %s has no absolute directory", whose)
	case searched == 1:
		where = fmt.Sprintf("was not found in the one directory on %s", whose)
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Program not found",
		Detail:   fmt.Sprintf("%s, which %s. Install it, give its full path, or set PATH in the app's env.", runs, where),
		Subject:  at.Ptr(),
	}
}

// program is the program a's command runs, or "" when that is only known
// once a shell expands it. viaShell is true for a string command.
func program(a *App) (prog string, viaShell bool) {
	if len(a.Command) == 0 {
		return "", false
	}
	s := a.Written.CommandString
	if s == "" {
		return a.Command[0], false
	}
	assigns, w, ok := simpleCommand(s)
	if !ok || w.expands || w.glob {
		return "", true
	}
	for _, as := range assigns {
		if strings.HasPrefix(s[as.start:as.end], "PATH=") {
			return "", true // the shell looks it up on a PATH set right there
		}
	}
	return w.value, true
}

// checkBind checks one socket the runner binds: the directory of a unix
// socket must exist, and a tcp port below the unprivileged start needs root
// or CAP_NET_BIND_SERVICE.
func checkBind(h *host, what, network, address string, at hcl.Range, privileged int, canBindLow bool) hcl.Diagnostics {
	if network == "unix" {
		dir := filepath.Dir(address)
		if err := h.isDir(dir); err != nil {
			detail := fmt.Sprintf("%s would create its socket %s in %s, which does not exist. Create the directory first (mkdir -p %s), or put the socket in one that exists.", what, address, dir, dir)
			if !errors.Is(err, fs.ErrNotExist) {
				detail = fmt.Sprintf("%s would create its socket %s in %s, which cannot be used: %s.", what, address, dir, unwrapPathError(err))
			}
			return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Socket directory missing", Detail: detail, Subject: at.Ptr()}}
		}
		return nil
	}
	_, port, err := splitHostPort(address)
	if err != nil || canBindLow {
		return nil
	}
	if n, err := strconv.Atoi(port); err == nil && n > 0 && n < privileged {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Port needs privilege",
			Detail:   fmt.Sprintf("%s binds port %d, but on this machine ports below %d need root or the CAP_NET_BIND_SERVICE capability, and clusterrun runs as uid %d without them. Use port %d or above, run clusterrun as root (an app's user attribute then drops the privilege for the app), or grant the binary the capability: sudo setcap cap_net_bind_service=+ep $(command -v clusterrun).", what, n, privileged, h.euid(), privileged),
			Subject:  at.Ptr(),
		}}
	}
	return nil
}

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
