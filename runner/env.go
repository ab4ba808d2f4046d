package runner

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
)

// inheritedOnly are variables of the runner's own environment that must not
// leak into instances: they describe the runner's sockets, not theirs.
var inheritedOnly = []string{"LISTEN_FDS=", "LISTEN_FDNAMES=", "LISTEN_PID=", "NOTIFY_SOCKET="}

// env builds an instance's environment: the runner's own, then the app's
// (global env_file < env < app env_file < app env), then what clusterrun
// sets. Later entries replace earlier ones, so there are no duplicates for
// libc's getenv to pick the wrong one from.
func (r *Runner) env(rel *release, index int, notifySocket string, readyFd int) []string {
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
	for _, k := range sortedKeys(rel.app.Env) {
		set(k + "=" + rel.app.Env[k])
	}
	for _, kv := range r.lset.Env(rel.listeners) {
		set(kv)
	}
	if rel.app.Port != 0 {
		set("PORT=" + strconv.Itoa(rel.app.Port+index))
	}
	set("CLUSTERRUN_APP=" + rel.app.Name)
	set("CLUSTERRUN_INSTANCE=" + strconv.Itoa(index))
	set("NOTIFY_SOCKET=" + notifySocket)
	set("CLUSTERRUN_READY_FD=" + strconv.Itoa(readyFd))
	if len(rel.listeners) > 0 && r.preload != "" {
		set("CLUSTERRUN_LISTEN_PORTS=" + r.lset.PortMap(rel.listeners))
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

// instancePort is the port a tcp or http readiness probe knocks on: the
// Procfile's PORT for this instance, or PORT from the app's environment.
func instancePort(a *hclconfig.App, index int) int {
	if a.Port != 0 {
		return a.Port + index
	}
	p, _ := strconv.Atoi(a.Env["PORT"])
	return p
}

// probe returns nil once the instance's port answers: a TCP connect, or an
// HTTP GET of path answered with 2xx. It gives up when ctx ends.
func probe(ctx context.Context, rd hclconfig.Ready, port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if probeOnce(ctx, client, rd, addr) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func probeOnce(ctx context.Context, client *http.Client, rd hclconfig.Ready, addr string) bool {
	if rd.Check == hclconfig.ReadyTCP {
		d := net.Dialer{Timeout: time.Second}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+rd.Path, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
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
