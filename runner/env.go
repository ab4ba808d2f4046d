package runner

import (
	"fmt"
	"os"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/listeners"
)

// inheritedOnly are variables of the runner's own environment that must not
// leak into instances: they describe the runner's sockets, not theirs.
// (cli unsets them once read; this keeps them out of instances whoever
// starts the runner.)
var inheritedOnly = []string{"LISTEN_FDS=", "LISTEN_FDNAMES=", "LISTEN_PID=", "NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID="}

// env builds an instance's environment: the runner's own, then the app's
// (global env_file < env < app env_file < app env), then what clusterrun
// sets. Later entries replace earlier ones, so there are no duplicates for
// libc's getenv to pick the wrong one from.
func (r *Runner) env(rel *Release, index int, g *listeners.Grant, notifySocket string, readyFd int) []string {
	var out []string
	pos := make(map[string]int)
	set := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := pos[k]; ok {
			out[i] = kv
			return
		}
		pos[k] = len(out)
		out = append(out, kv)
	}
outer:
	for _, kv := range os.Environ() {
		for _, p := range inheritedOnly {
			if strings.HasPrefix(kv, p) {
				continue outer
			}
		}
		set(kv)
	}
	for _, k := range sortedKeys(rel.App.Env) {
		set(k + "=" + rel.App.Env[k])
	}
	for _, kv := range g.Env {
		set(kv)
	}
	if rel.App.Port != 0 {
		set("PORT=" + strconv.Itoa(rel.App.InstancePort(index)))
	}
	set(r.marker)
	set("CLUSTERRUN_APP=" + rel.App.Name)
	set("CLUSTERRUN_INSTANCE=" + strconv.Itoa(index))
	set("NOTIFY_SOCKET=" + notifySocket)
	set("CLUSTERRUN_READY_FD=" + strconv.Itoa(readyFd))
	if h := rel.App.Health; h.Check == hclconfig.HealthWatchdog {
		set("WATCHDOG_USEC=" + strconv.FormatInt(h.Interval.Microseconds(), 10))
	}
	if len(rel.Listeners) > 0 && r.preload != "" {
		opts := "--require " + strconv.Quote(r.preload)
		if i, ok := pos["NODE_OPTIONS"]; ok {
			if _, v, _ := strings.Cut(out[i], "="); v != "" {
				opts += " " + v
			}
		}
		set("NODE_OPTIONS=" + opts)
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// resolveCredentials looks up the user and group of every app that names
// one, so a typo fails before anything starts rather than at each spawn.
func resolveCredentials(cfg *hclconfig.Config) (map[string]*syscall.Credential, error) {
	out := make(map[string]*syscall.Credential)
	for _, a := range cfg.Apps {
		c, err := credential(a)
		if err != nil {
			return nil, fmt.Errorf("app %q: %w", a.Name, err)
		}
		out[a.Name] = c
	}
	return out, nil
}

func credential(a *hclconfig.App) (*syscall.Credential, error) {
	if a.User == "" && a.Group == "" {
		return nil, nil
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("cannot run as user %q group %q: clusterrun is not running as root", a.User, a.Group)
	}
	c := &syscall.Credential{}
	if a.User != "" {
		u, err := user.Lookup(a.User)
		if _, numeric := strconv.Atoi(a.User); err != nil && numeric == nil {
			u, err = user.LookupId(a.User)
		}
		if err != nil {
			return nil, fmt.Errorf("cannot run as user %q: %w", a.User, err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		c.Uid, c.Gid = uint32(uid), uint32(gid)
		// The user's own supplementary groups, as initgroups(3) would set;
		// never root's.
		ids, _ := u.GroupIds()
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				c.Groups = append(c.Groups, uint32(g))
			}
		}
	}
	if a.Group != "" {
		g, err := user.LookupGroup(a.Group)
		if _, numeric := strconv.Atoi(a.Group); err != nil && numeric == nil {
			g, err = user.LookupGroupId(a.Group)
		}
		if err != nil {
			return nil, fmt.Errorf("cannot run as group %q: %w", a.Group, err)
		}
		gid, _ := strconv.ParseUint(g.Gid, 10, 32)
		c.Gid = uint32(gid)
	}
	if c.Groups == nil {
		c.Groups = []uint32{} // drop root's supplementary groups
	}
	return c, nil
}
