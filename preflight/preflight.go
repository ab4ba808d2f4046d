// Package preflight checks a config against the machine it is about to
// run on: what `up` would refuse or crash-loop on is an error that `check`
// reports, at the attribute at fault. Sockets that cannot be bound (a
// privileged port, a unix socket's missing directory), accounts that do
// not exist or cannot be switched to, a dir or a program that is not
// there. What a file means is package hclconfig's; whether this machine
// can run it is this package's.
package preflight

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/proc"
	"github.com/hashicorp/hcl/v2"
)

// host is what the checks ask of the machine; tests replace it.
type host struct {
	// environ is the runner's own environment, under each app's env.
	environ func() []string
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
	// isExecutable is proc.Executable: nil, or fs.ErrNotExist,
	// proc.ErrIsDir, proc.ErrNotExecutable.
	isExecutable func(path string) error
}

var errNotDir = errors.New("not a directory")

// Linux capability bits (linux/capability.h).
const (
	capSetgid         = 6
	capSetuid         = 7
	capNetBindService = 10
)

// machine is the host Check asks.
var machine = realHost()

func realHost() *host {
	return &host{
		environ:               os.Environ,
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
		isExecutable: proc.Executable,
	}
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
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

// Check checks cfg against this machine. cfg may be a partial config (see
// hclconfig.LoadPartial): a value that did not decode is not checked, so
// that a mistake in the file hides nothing here, and adds nothing either.
func Check(cfg *hclconfig.Config) hcl.Diagnostics { return check(cfg, machine) }

func check(cfg *hclconfig.Config, h *host) hcl.Diagnostics {
	var diags hcl.Diagnostics
	users := make(map[string]error)
	groups := make(map[string]error)
	// Many apps run the same program: look each up once.
	programs := make(map[programKey]lookup)
	environ := h.environ()
	for _, a := range cfg.Apps {
		diags = append(diags, checkAccount(h, a, "user", a.User, a.At.User, users, h.lookupUser)...)
		diags = append(diags, checkAccount(h, a, "group", a.Group, a.At.Group, groups, h.lookupGroup)...)
		dirOK := !a.At.DirUnknown
		if a.At.Dir != nil {
			if err := h.isDir(a.Dir); err != nil {
				dirOK = false
				detail := fmt.Sprintf("The dir of app %q, %s, does not exist. Create it, or correct the path; a relative dir is relative to the config file.", a.Name, a.Dir)
				if !errors.Is(err, fs.ErrNotExist) {
					detail = fmt.Sprintf("The dir of app %q, %s, cannot be used: %s. The app runs in this directory, so it must be one.", a.Name, a.Dir, unwrapPathError(err))
				}
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing dir", Detail: detail, Subject: a.At.Dir})
			}
		}
		if dirOK {
			if d := checkProgram(h, a, environ, programs); d != nil {
				diags = append(diags, d)
			}
		}
	}

	privileged, known := h.unprivilegedPortStart()
	canBindLow := !known || h.hasCap(capNetBindService)
	for _, l := range cfg.Listeners {
		what := fmt.Sprintf("Listener %q", l.Name)
		if cfg.Procfile {
			what = "The web line's proxy listener (on foreman's port: PORT from .env or the environment, else 5000)"
		}
		diags = append(diags, checkBind(h, what, l.Network, l.Address, l.AddressRange, privileged, canBindLow)...)
	}
	if m := cfg.Metrics; m != nil && m.Address != "" {
		diags = append(diags, checkBind(h, "The metrics block", "tcp", m.Address, m.AddressRange, privileged, canBindLow)...)
	}
	return diags
}

// checkAccount checks a user or group attribute: the account must exist,
// and only root (or a process with CAP_SETUID and CAP_SETGID) can start a
// process as another account.
func checkAccount(h *host, a *hclconfig.App, kind, name string, at *hcl.Range, cache map[string]error, lookup func(string) error) hcl.Diagnostics {
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

// programKey is a lookup of a program name on a PATH from a directory,
// and lookup its outcome: whether it was found, in how many directories
// it was looked for.
type (
	programKey struct{ prog, path, dir string }
	lookup     struct {
		found bool
		dirs  int
	}
)

// checkProgram checks that the program of a's command can be found where
// the runner's exec will look for it (proc.SearchPath): a name without "/"
// on the PATH of the instance's environment (the runner's own, under the
// app's env), anything else relative to the app's dir. A path is not
// checked when the app has depends_on, because a build step it waits for
// may create it.
func checkProgram(h *host, a *hclconfig.App, environ []string, seen map[programKey]lookup) *hcl.Diagnostic {
	prog, viaShell := a.Program()
	if prog == "" {
		return nil
	}
	runs := fmt.Sprintf("App %q runs %q", a.Name, prog)
	if viaShell {
		runs += " (the program of its command string)"
	}
	at := a.At.Command
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
		case errors.Is(err, proc.ErrNotExecutable):
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

	pathVar, hasPath := a.Env["PATH"]
	whose := fmt.Sprintf("app %q's PATH (from its env)", a.Name)
	if !hasPath {
		whose = "the runner's PATH"
		pathVar, hasPath = lookupEnv(environ, "PATH")
		if !hasPath {
			whose, pathVar = "the default PATH ("+proc.DefaultPath+"; the runner has none)", proc.DefaultPath
		}
	}
	key := programKey{prog, pathVar, a.Dir}
	r, ok := seen[key]
	if !ok {
		dirs := proc.SearchPath([]string{"PATH=" + pathVar}, a.Dir)
		r.dirs = len(dirs)
		for _, d := range dirs {
			if h.isExecutable(filepath.Join(d, prog)) == nil {
				r.found = true
				break
			}
		}
		seen[key] = r
	}
	if r.found {
		return nil
	}
	where := fmt.Sprintf("was not found in any of the %d directories on %s", r.dirs, whose)
	switch {
	case pathVar == "":
		where = fmt.Sprintf("cannot be looked up: %s is empty", whose)
	case r.dirs == 1:
		where = fmt.Sprintf("was not found in the one directory on %s", whose)
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Program not found",
		Detail:   fmt.Sprintf("%s, which %s. Install it, give its full path, or set PATH in the app's env.", runs, where),
		Subject:  at.Ptr(),
	}
}

// lookupEnv finds name in an environment, the last entry winning as in
// the runner's.
func lookupEnv(env []string, name string) (string, bool) {
	val, found := "", false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			val, found = v, true
		}
	}
	return val, found
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
	_, port, err := net.SplitHostPort(address)
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

// unwrapPathError drops the "stat /path: " prefix of an *fs.PathError, as
// the messages name the path themselves.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
