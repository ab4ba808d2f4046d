package hclconfig

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// formationAll is foreman's name for "every app" in a formation.
const formationAll = "all"

// ParseFormation parses foreman's formation syntax, the argument of
// `up -m`: "web=4,worker=2" sets instance counts for this run. Counts go
// from 0 (the app is not run) to 4096; "all=N" sets every app, and a
// named app overrides it whatever the order. Spaces around names and
// counts are allowed.
func ParseFormation(s string) (map[string]int, error) {
	const syntax = `write APP=N pairs separated by commas, such as "web=4,worker=2", or "all=N" for every app`
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("cannot parse formation %q: it is empty; %s", s, syntax)
	}
	f := make(map[string]int)
	for _, item := range strings.Split(s, ",") {
		name, count, ok := strings.Cut(item, "=")
		name, count = strings.TrimSpace(name), strings.TrimSpace(count)
		switch {
		case strings.TrimSpace(item) == "":
			return nil, fmt.Errorf("cannot parse formation %q: it has an empty item; %s", s, syntax)
		case !ok:
			return nil, fmt.Errorf("cannot parse formation %q: %q has no \"=\"; %s", s, strings.TrimSpace(item), syntax)
		case name != formationAll && !ValidName(name):
			return nil, fmt.Errorf("cannot parse formation %q: %q is not an app name (a name starts with a letter or digit and contains only letters, digits, \"-\" and \"_\")", s, name)
		}
		n, err := strconv.Atoi(count)
		if err != nil || !isDigits(count) || n > MaxInstances {
			return nil, fmt.Errorf("cannot parse formation %q: the count of %s is %q, not a whole number from 0 to %d", s, name, count, MaxInstances)
		}
		if _, dup := f[name]; dup {
			return nil, fmt.Errorf("cannot parse formation %q: %s is given twice", s, name)
		}
		f[name] = n
	}
	return f, nil
}

// WithFormation returns a copy of c with the instance counts of f, as
// ParseFormation returns it. An app set to 0 is not run: it is left out of
// the copy, and so is a listener that only it used. It is an error to name
// an app c does not have, to leave out an app that a running app depends
// on, or to give more than one instance to an app whose tcp or http check
// probes a PORT its instances would share. c itself is not changed.
func (c *Config) WithFormation(f map[string]int) (*Config, error) {
	apps := make(map[string]bool, len(c.Apps))
	for _, a := range c.Apps {
		apps[a.Name] = true
	}
	counts := make(map[string]int, len(c.Apps))
	if n, ok := f[formationAll]; ok {
		for _, a := range c.Apps {
			counts[a.Name] = n
		}
	}
	var unknown []string
	for name, n := range f {
		if name == formationAll {
			continue
		}
		if !apps[name] {
			unknown = append(unknown, name)
			continue
		}
		counts[name] = n
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		names := make([]string, len(c.Apps))
		for i, a := range c.Apps {
			names[i] = a.Name
		}
		hint := strings.TrimSuffix(strings.TrimPrefix(didYouMean(unknown[0], names...), " Did you mean"), "?")
		if hint != "" {
			hint = "; did you mean" + hint + "?"
		}
		return nil, fmt.Errorf("cannot apply formation: %s has no app %s%s (its apps: %s)", c.Path, quoteList(unknown, "or"), hint, listNames(names, ""))
	}

	out := *c
	out.Apps = nil
	byName := listenersByName(c)
	kept := make(map[string]bool, len(c.Apps))
	used := make(map[string]bool)
	for _, a := range c.Apps {
		n, set := counts[a.Name]
		if !set {
			n = a.Instances
		}
		if n == 0 {
			continue
		}
		cp := *a
		cp.Instances = n
		if set && n > 1 && sharesProbedPort(byName, a) {
			return nil, fmt.Errorf("cannot run %d instances of %s: its %s probes the PORT in its env, which the instances would share; give it a listener with mode = \"proxy\" to run more than one", n, a.Name, probeName(a))
		}
		out.Apps = append(out.Apps, &cp)
		kept[a.Name] = true
		for _, l := range a.Listeners {
			used[l] = true
		}
	}
	for _, a := range out.Apps {
		for _, dep := range a.DependsOn {
			if !kept[dep] {
				return nil, fmt.Errorf("cannot run %s without %s, which it depends on: give %s at least one instance, or take %s out of the formation as well", a.Name, dep, dep, a.Name)
			}
		}
	}
	if len(out.Apps) == 0 {
		return nil, fmt.Errorf("cannot apply formation: it leaves no app of %s to run", c.Path)
	}
	// A listener goes with the last app that used it; one that no app
	// listed stays, as it was in the file.
	dropped := make(map[string]bool)
	for _, a := range c.Apps {
		if !kept[a.Name] {
			for _, l := range a.Listeners {
				dropped[l] = true
			}
		}
	}
	out.Listeners = nil
	for _, l := range c.Listeners {
		if used[l.Name] || !dropped[l.Name] {
			out.Listeners = append(out.Listeners, l)
		}
	}
	return &out, nil
}

// quoteList joins names as "a", "b" or "c".
func quoteList(names []string, conj string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " " + conj + " " + q[len(q)-1]
}

// sharesProbedPort reports whether a probes (ready or health, tcp or http)
// the PORT of its env rather than a private port of its own: its instances
// would share that one port.
func sharesProbedPort(byName map[string]*Listener, a *App) bool {
	if a.Port != 0 || proxyListener(byName, a) != nil {
		return false
	}
	r, h := a.Ready.Check, a.Health.Check
	return r == ReadyTCP || r == ReadyHTTP || h == HealthTCP || h == HealthHTTP
}

func probeName(a *App) string {
	if r := a.Ready.Check; r == ReadyTCP || r == ReadyHTTP {
		return fmt.Sprintf("ready check %q", r)
	}
	return fmt.Sprintf("health check %q", a.Health.Check)
}
