package hclconfig

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// validate checks the rules that involve more than one value: names and
// their uniqueness, references between blocks, the dependency graph, and
// settings that contradict each other. Each value on its own was checked
// when it was decoded. hadErrors says whether earlier steps failed, which
// silences checks that would only restate those failures.
func validate(cfg *Config, srcs *sources, hadErrors bool) hcl.Diagnostics {
	var diags hcl.Diagnostics
	diags = append(diags, checkNames(srcs)...)
	diags = append(diags, checkAddresses(addressPlaces(cfg, srcs))...)

	listeners := make(map[string]bool, len(cfg.Listeners))
	for _, l := range cfg.Listeners {
		listeners[l.Name] = true
	}
	apps := make(map[string]*appSource, len(cfg.Apps))
	for _, as := range srcs.apps {
		if _, dup := apps[as.raw.Name]; !dup {
			apps[as.raw.Name] = as
		}
	}

	names := &nameLists{listeners: keys(listeners), apps: make([]string, 0, len(apps))}
	for n := range apps {
		names.apps = append(names.apps, n)
	}
	sort.Strings(names.apps)

	byName := listenersByName(cfg)
	used := make(map[string]bool)
	for i, a := range cfg.Apps {
		as := srcs.apps[i]
		diags = append(diags, checkAppListeners(a, as, listeners, names, used)...)
		diags = append(diags, checkDependsOn(a, as, apps, names)...)
		diags = append(diags, checkReady(byName, a, as)...)
		diags = append(diags, checkHealth(byName, a, as)...)
		diags = append(diags, checkRestart(a, as)...)
	}
	diags = append(diags, checkCycles(srcs, apps)...)

	for _, ls := range srcs.listeners {
		if !used[ls.raw.Name] && !srcs.listenersUnknown {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  "Unused listener",
				Detail:   fmt.Sprintf("No app lists listener %q, so its socket would be bound for nobody. Add it to an app's listeners, or remove the block.", ls.raw.Name),
				Subject:  ls.raw.DefRange.Ptr(),
			})
		}
	}

	if len(cfg.Apps) == 0 && !hadErrors && !diags.HasErrors() {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "No apps",
			Detail:   "The file defines no app, so there is nothing to run. Add an app block, such as: app \"web\" { command = [\"node\", \"server.js\"] }.",
			Subject:  srcs.end.Ptr(),
		})
	}
	return diags
}

func checkNames(srcs *sources) hcl.Diagnostics {
	var diags hcl.Diagnostics
	const rule = `A name starts with an ASCII letter or digit and contains only ASCII letters, digits, "-" and "_"`

	seenListeners := make(map[string]*rawListener)
	for _, ls := range srcs.listeners {
		r := ls.raw
		if !ValidName(r.Name) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid listener name",
				Detail:   fmt.Sprintf("The listener name %q cannot be used. %s, because instances receive listener names joined with \":\" in LISTEN_FDNAMES.", r.Name, rule),
				Subject:  r.NameRange.Ptr(),
			})
		}
		if prev, dup := seenListeners[r.Name]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Duplicate listener %q", r.Name),
				Detail:   fmt.Sprintf("A listener named %q was already defined. Previous definition was at %s. Each listener needs its own name.", r.Name, posString(prev.DefRange)),
				Subject:  r.DefRange.Ptr(),
			})
			continue
		}
		seenListeners[r.Name] = r
	}

	seenApps := make(map[string]*rawApp)
	for _, as := range srcs.apps {
		r := as.raw
		if !ValidName(r.Name) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid app name",
				Detail:   fmt.Sprintf("The app name %q cannot be used. %s, because the name appears as \"NAME.N\" on the command line and as the prefix of every log line.", r.Name, rule),
				Subject:  r.NameRange.Ptr(),
			})
		}
		if prev, dup := seenApps[r.Name]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Duplicate app %q", r.Name),
				Detail:   fmt.Sprintf("An app named %q was already defined. Previous definition was at %s. Each app needs its own name.", r.Name, posString(prev.DefRange)),
				Subject:  r.DefRange.Ptr(),
			})
			continue
		}
		seenApps[r.Name] = r
	}
	return diags
}

// nameLists are the sorted names that "unknown name" messages suggest
// from, computed once per file. work counts the names suggestions have
// been sought among: each costs a comparison, so past maxSuggestionWork
// the messages go without, and a file of 15,000 apps that each name a
// missing one is not 15,000 x 15,000 comparisons.
type nameLists struct {
	listeners, apps []string
	work            int
}

const maxSuggestionWork = 1 << 20

// suggest is didYouMean over names other than except, within the budget.
func (n *nameLists) suggest(given string, names []string, except string) string {
	n.work += len(names)
	if n.work > maxSuggestionWork {
		return ""
	}
	return didYouMeanExcept(given, names, except)
}

func checkAppListeners(a *App, as *appSource, listeners map[string]bool, names *nameLists, used map[string]bool) hcl.Diagnostics {
	var diags hcl.Diagnostics
	seen := make(map[string]hcl.Range)
	for _, it := range as.listeners {
		used[it.val] = true
		if !listeners[it.val] {
			diags = append(diags, it.errorf("Unknown listener",
				fmt.Sprintf("App %q lists listener %q, but no listener block has that name.%s%s", a.Name, it.val, names.suggest(it.val, names.listeners, ""), known("Defined listeners", names.listeners, ""))))
			continue
		}
		if prev, dup := seen[it.val]; dup {
			diags = append(diags, it.errorf("Listener listed twice",
				fmt.Sprintf("App %q lists listener %q twice (first at %s). Each listener is handed to an instance once, as one file descriptor; remove the repeat.", a.Name, it.val, posString(prev))))
			continue
		}
		seen[it.val] = it.rng()
	}
	return diags
}

func checkDependsOn(a *App, as *appSource, apps map[string]*appSource, lists *nameLists) hcl.Diagnostics {
	var diags hcl.Diagnostics
	seen := make(map[string]hcl.Range)
	for _, it := range as.dependsOn {
		switch {
		case it.val == a.Name:
			diags = append(diags, it.errorf("App depends on itself",
				fmt.Sprintf("App %q lists itself in depends_on. depends_on names the other apps that must be ready before this one starts; remove %q.", a.Name, it.val)))
		case apps[it.val] == nil:
			diags = append(diags, it.errorf("Unknown app in depends_on",
				fmt.Sprintf("App %q depends on %q, but no app has that name.%s%s", a.Name, it.val, lists.suggest(it.val, lists.apps, a.Name), known("Defined apps", lists.apps, a.Name))))
		default:
			if prev, dup := seen[it.val]; dup {
				diags = append(diags, it.errorf("Dependency listed twice",
					fmt.Sprintf("App %q lists %q in depends_on twice (first at %s); remove the repeat.", a.Name, it.val, posString(prev))))
				continue
			}
			seen[it.val] = it.rng()
		}
	}
	return diags
}

// checkCycles reports each depends_on cycle once, at the dependency that
// closes it, naming the whole path.
func checkCycles(srcs *sources, apps map[string]*appSource) hcl.Diagnostics {
	var diags hcl.Diagnostics
	const (
		unvisited = iota
		visiting
		done
	)
	state := make(map[string]int)
	reported := make(map[string]bool)
	var stack []string

	var visit func(name string)
	visit = func(name string) {
		state[name] = visiting
		stack = append(stack, name)
		for _, it := range apps[name].dependsOn {
			dep := it.val
			if dep == name || apps[dep] == nil {
				continue // reported by checkDependsOn
			}
			switch state[dep] {
			case unvisited:
				visit(dep)
			case visiting:
				i := len(stack) - 1
				for stack[i] != dep {
					i--
				}
				cycle := append(append([]string(nil), stack[i:]...), dep)
				key := cycleKey(cycle[:len(cycle)-1])
				if reported[key] {
					continue
				}
				reported[key] = true
				diags = append(diags, it.errorf("Dependency cycle",
					fmt.Sprintf("The depends_on lists form a cycle: %s. An app starts only after the apps it depends on are ready, so none of these could ever start; remove one of the dependencies.", strings.Join(cycle, " -> "))))
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
	}
	for _, as := range srcs.apps {
		if apps[as.raw.Name] == as && state[as.raw.Name] == unvisited {
			visit(as.raw.Name)
		}
	}
	return diags
}

// cycleKey names a cycle independently of where the walk entered it.
func cycleKey(nodes []string) string {
	start := 0
	for i, n := range nodes {
		if n < nodes[start] {
			start = i
		}
	}
	return strings.Join(append(append([]string(nil), nodes[start:]...), nodes[:start]...), "\x00")
}

// applyProxyDefaults gives an app with a proxy listener and no ready check
// written the tcp check: its private port answering is the best sign that
// it can take the connections the proxy will send it.
func applyProxyDefaults(cfg *Config, srcs *sources) {
	byName := listenersByName(cfg)
	for i, a := range cfg.Apps {
		as := srcs.apps[i]
		if (as.raw.Ready == nil || absent(as.raw.Ready.Check)) && proxyListener(byName, a) != nil {
			a.Ready.Check = ReadyTCP
		}
	}
}

// listenersByName indexes cfg's listeners (the first of a name wins, as
// in Config.Listener).
func listenersByName(cfg *Config) map[string]*Listener {
	m := make(map[string]*Listener, len(cfg.Listeners))
	for _, l := range cfg.Listeners {
		if m[l.Name] == nil {
			m[l.Name] = l
		}
	}
	return m
}

// proxyListener returns the first of the app's listeners in proxy mode.
func proxyListener(byName map[string]*Listener, a *App) *Listener {
	for _, name := range a.Listeners {
		if l := byName[name]; l != nil && l.Mode.Proxied() {
			return l
		}
	}
	return nil
}

// checkProbe checks that a tcp or http check (of the ready or the health
// block) has one address per instance to probe: the private port a proxy
// listener gives each instance, or the PORT of an app without listeners
// when PORT is known per instance (a Procfile line, or env PORT with one
// instance).
func checkProbe(byName map[string]*Listener, a *App, as *appSource, block, check string, expr hcl.Expression) hcl.Diagnostics {
	if proxyListener(byName, a) != nil || (len(a.Listeners) == 0 && a.Port != 0) {
		return nil
	}
	title := strings.ToUpper(block[:1]) + block[1:]
	fix := `use check = "notify" (the app sends READY=1 on NOTIFY_SOCKET) or check = "delay".`
	if block == "health" {
		fix = `use check = "watchdog" (the app sends WATCHDOG=1 on NOTIFY_SOCKET at least every interval).`
	}
	if len(a.Listeners) > 0 {
		return hcl.Diagnostics{exprError(expr, nil, title+" check cannot probe a shared socket",
			fmt.Sprintf("App %q has listeners, and the %q check would probe them: every instance accepts on the same socket, so the runner cannot tell which instance answered. Set mode = \"proxy\" on listener %q, which gives every instance its own private port to probe, or %s", a.Name, check, a.Listeners[0], fix))}
	}
	var diags hcl.Diagnostics
	if a.Instances > 1 || a.Written.Instances == "max" {
		n := strconv.Itoa(a.Instances)
		if a.Written.Instances == "max" {
			n = `"max"`
		}
		diags = append(diags, exprError(expr, nil, title+" check needs a single instance",
			fmt.Sprintf("App %q runs instances = %s, but the %q check probes the instance's own PORT, and without a runner-held listener the instances share one PORT. Give the app a listener with mode = \"proxy\", which gives each instance its own private port, set instances = 1, or %s", a.Name, n, check, fix)))
	}
	if p, ok := a.Env["PORT"]; !ok {
		diags = append(diags, exprError(expr, nil, title+" check has no port to probe",
			fmt.Sprintf("App %q uses the %q check, which probes the port in the app's PORT variable, but PORT is not set in the app's env or the global env. Set env = { PORT = \"8080\" } to the port the app listens on, give the app a listener with mode = \"proxy\" (which sets PORT to a private port per instance), or %s", a.Name, check, fix)))
	} else if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		diags = append(diags, exprError(expr, nil, title+" check has no port to probe",
			fmt.Sprintf("App %q uses the %q check, which probes the port in PORT, but PORT is %q, not a port number from 1 to 65535.", a.Name, check, p)))
	}
	return diags
}

func checkReady(byName map[string]*Listener, a *App, as *appSource) hcl.Diagnostics {
	var diags hcl.Diagnostics
	r := a.Ready
	if as.checkExpr != nil && (r.Check == ReadyTCP || r.Check == ReadyHTTP) {
		diags = append(diags, checkProbe(byName, a, as, "ready", string(r.Check), as.checkExpr)...)
	}
	if as.pathSet && r.Check != ReadyHTTP {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "Ready path is ignored",
			Detail:   fmt.Sprintf("App %q sets a ready path, but its check is %s and only check = \"http\" requests a path. Remove the path, or set check = \"http\".", a.Name, readyCheckName(a, as)),
			Subject:  as.raw.Ready.Path.Range().Ptr(),
		})
	}
	if as.delaySet && r.Check != ReadyDelay {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "Ready delay is ignored",
			Detail:   fmt.Sprintf("App %q sets a ready delay, but its check is %s and only check = \"delay\" waits for a delay. Remove the delay, or set check = \"delay\".", a.Name, readyCheckName(a, as)),
			Subject:  as.delayExpr.Range().Ptr(),
		})
	}
	if r.Check == ReadyDelay && r.Delay >= r.Timeout {
		subject := as.delayExpr
		if subject == nil {
			subject = as.raw.Ready.Timeout
		}
		diags = append(diags, exprError(subject, nil, "Ready delay is not shorter than the timeout",
			fmt.Sprintf("App %q counts an instance ready after it has run for %s, but gives up on it after %s, so no instance could ever become ready. Make the delay shorter than the timeout.", a.Name, r.Delay, r.Timeout)))
	}
	return diags
}

func checkHealth(byName map[string]*Listener, a *App, as *appSource) hcl.Diagnostics {
	if c := a.Health.Check; as.healthCheckExpr != nil && (c == HealthTCP || c == HealthHTTP) {
		return checkProbe(byName, a, as, "health", string(c), as.healthCheckExpr)
	}
	return nil
}

// readyCheckName is the app's ready check for a message, saying so when it
// is the proxy default rather than what the file wrote.
func readyCheckName(a *App, as *appSource) string {
	if as.checkExpr == nil && a.Ready.Check == ReadyTCP {
		return `"tcp" (the default for an app with a proxy listener)`
	}
	return strconv.Quote(string(a.Ready.Check))
}

func checkRestart(a *App, as *appSource) hcl.Diagnostics {
	r := a.Restart
	if r.Backoff <= r.MaxBackoff {
		return nil
	}
	subject := as.backoffExpr
	if subject == nil {
		subject = as.maxBackoffExpr
	}
	return hcl.Diagnostics{exprError(subject, nil, "Backoff is longer than max_backoff",
		fmt.Sprintf("App %q waits %s before its first restart, but max_backoff caps the wait at %s. The backoff doubles up to max_backoff, so it must start at or below it.", a.Name, r.Backoff, r.MaxBackoff))}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// maxKnown is how many names "unknown name" messages list.
const maxKnown = 10

// known lists the names that do exist, for "unknown name" messages: the
// first maxKnown of them, and how many more there are.
// names other than except (which may be "").
func known(what string, names []string, except string) string {
	return fmt.Sprintf(" %s: %s.", what, listNames(names, except))
}

// listNames quotes the first maxKnown names other than except, and counts
// the rest. names must be sorted when except is not "".
func listNames(names []string, except string) string {
	total := len(names)
	if except != "" {
		if i := sort.SearchStrings(names, except); i < len(names) && names[i] == except {
			total--
		}
	}
	q := make([]string, 0, maxKnown)
	for _, n := range names {
		if len(q) == maxKnown {
			break
		}
		if n != except {
			q = append(q, strconv.Quote(n))
		}
	}
	if total == 0 {
		return "none"
	}
	more := ""
	if total > len(q) {
		more = fmt.Sprintf(" and %s more", thousands(int64(total-len(q))))
	}
	return strings.Join(q, ", ") + more
}
