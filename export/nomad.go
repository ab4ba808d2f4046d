package export

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
)

// nomad renders one job, as the JSON that `nomad job run -json` and the
// HTTP API take: a group per app with its task, ports, service and
// checks.
func (r *renderer) nomad() []File {
	r.sharedListeners("Nomad", "its own port and service")
	r.listenerTuning("Nomad")
	var groups list
	for _, a := range r.cfg.Apps {
		groups = append(groups, r.nomadGroup(a))
	}
	job := obj{}
	job.set("ID", r.jobID())
	job.set("Name", r.opts.Name)
	job.set("Type", "service")
	job.set("Datacenters", list{"*"})
	job.set("TaskGroups", groups)
	// A JSON file has no comments: what it came from goes in the job's
	// meta.
	job.set("Meta", obj{{"generated-by", "clusterrun export nomad"}, {"source", r.source()}})
	name := dnsLabel(r.opts.Name) + ".nomad.json"
	return []File{r.jsonFile(name, obj{{"Job", job}})}
}

// jobID is the cluster's name as a Nomad job ID, which may hold no space
// or NUL.
func (r *renderer) jobID() string {
	if bad := jsonText(r.opts.Name); bad != "" || strings.ContainsAny(r.opts.Name, " \x00") || r.opts.Name == "" {
		if bad == "" {
			bad = "Nomad refuses a job ID that is empty or holds a space or NUL"
		}
		r.refuseValue(hclRangeNone, "the cluster's name (--name; by default the config file's directory name)", "job ID", r.opts.Name, bad)
	}
	return r.opts.Name
}

// jsonFile writes a job, refusing what JSON cannot hold that the renderer
// did not already refuse at its position.
func (r *renderer) jsonFile(name string, o obj) File {
	if bad := badStrings(o); len(bad) > 0 && len(r.refusals) == 0 {
		r.refuse(hclRangeNone, "A value of %s cannot be written into a Nomad job: %s. Nothing was written.", name, bad[0])
	}
	return File{Name: name, Data: jsonIndent(o)}
}

// nomadLabel turns a listener name into a port label, which Nomad puts in
// variable names (NOMAD_PORT_<label>).
func nomadLabel(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

func nanos(d time.Duration) int64 { return int64(d) }

func (r *renderer) nomadGroup(a *hclconfig.App) obj {
	n, isMax := r.instances(a)
	if isMax {
		r.warnApp(a, "instances", `"max" has no Nomad equivalent, count must be a number: rendered as %d, this machine's CPU count; set what the nodes should run`, n)
	}

	// Ports: a fixed port is a static port, ":0" a dynamic one.
	var reserved, dynamic list
	var labels []string
	port := ""
	for _, l := range r.enginePorts(a, "Nomad", true) {
		label := nomadLabel(l.Name)
		labels = append(labels, label)
		if p := tcpPort(l); p > 0 {
			reserved = append(reserved, obj{{"Label", label}, {"Value", p}})
			if n > 1 {
				r.warnApp(a, "listeners", "listener %q has the static port %d, which each of the %d instances needs on its node: Nomad places at most one per node; use a dynamic port (\":0\") and a load balancer that reads the service", l.Name, p, n)
			}
			if port == "" {
				port = strconv.Itoa(p)
			}
		} else {
			dynamic = append(dynamic, obj{{"Label", label}})
			if port == "" {
				port = "${NOMAD_PORT_" + label + "}"
			}
		}
	}
	if port == "" && a.Port != 0 {
		port = strconv.Itoa(a.Port)
	}

	task := obj{}
	task.set("Name", a.Name)
	task.set("Driver", "raw_exec")
	task.set("Config", r.nomadConfig(a))
	task.set("Env", r.nomadEnv(a, port))
	if a.User != "" {
		task.set("User", r.text(a, []any{"user"}, fmt.Sprintf("the user of app %q", a.Name), a.User, nomadText))
	}
	if a.Group != "" {
		r.warnApp(a, "group", "a Nomad task has a user, not a group: it runs with its user's primary group")
	}
	task.set("KillSignal", stopSignal(a))
	task.set("KillTimeout", nanos(a.Stop.Timeout))
	if m := a.Restart.MaxMemory; m > 0 {
		mib := int((m + 1<<20 - 1) >> 20)
		// memory is what the scheduler reserves (Nomad's default, or the
		// limit when that is less); memory_max the limit, which needs
		// memory oversubscription enabled in the cluster.
		task.set("Resources", obj{{"MemoryMB", min(300, mib)}, {"MemoryMaxMB", mib}})
	}
	for _, f := range r.appEnvFiles(a) {
		r.warnEnv(a, f.global, "env_file", "a Nomad task reads no env file: put the variables of %s in the job's env, or in a template block with env = true", r.relative(f.path))
	}

	g := obj{}
	g.set("Name", a.Name)
	g.set("Count", n)
	g.set("RestartPolicy", r.nomadRestart(a))
	g.set("Update", r.nomadUpdate(a, len(labels) > 0))
	var nets list
	if len(reserved) > 0 || len(dynamic) > 0 {
		net := obj{}
		net.set("ReservedPorts", reserved)
		net.set("DynamicPorts", dynamic)
		nets = list{net}
	}
	g.set("Networks", nets)
	g.set("Services", r.nomadServices(a, labels))
	g.set("Tasks", list{task})

	if len(a.DependsOn) > 0 {
		r.warnApp(a, "depends_on", "Nomad starts groups independently: wait for %s in a prestart task, or let the app retry", strings.Join(a.DependsOn, ", "))
	}
	if a.Reload.Order == hclconfig.OrderStartFirst {
		r.warnApp(a, "reload.order", `Nomad's rolling update stops an old allocation before it places the new one ("stop-first"); for start-first use a canary update with auto_promote`)
	}
	r.commonWarnings(a, "Nomad")
	return g
}

// nomadConfig is the raw_exec config: a shell that changes to the app's
// dir (raw_exec runs in the task's directory) and execs the command, as
// written: a list through "$0" "$@", unquoted; a string as sh -c runs it.
func (r *renderer) nomadConfig(a *hclconfig.App) obj {
	dir, _ := r.workDir(a)
	dir = r.text(a, []any{"dir"}, fmt.Sprintf("the directory of app %q (its dir, else the config file's directory or --dir)", a.Name), dir, nomadText)
	cd := "cd " + shellQuote(dir) + " && "
	var args list
	if isShell(a) {
		script := r.text(a, []any{"command"}, fmt.Sprintf("the command of app %q", a.Name), a.Command[2], nomadText)
		args = list{"-c", cd + script}
	} else {
		args = list{"-c", cd + `exec "$0" "$@"`}
		for i, w := range a.Command {
			args = append(args, r.text(a, commandPath(a, i), fmt.Sprintf("word %d of the command of app %q", i+1, a.Name), w, nomadText))
		}
	}
	return obj{{"command", "/bin/sh"}, {"args", args}}
}

func (r *renderer) nomadEnv(a *hclconfig.App, port string) obj {
	env := obj{}
	env.set("CLUSTERRUN_APP", a.Name)
	// 0..count-1 for the allocations of a group, as clusterrun numbers
	// instances.
	env.set("CLUSTERRUN_INSTANCE", "${NOMAD_ALLOC_INDEX}")
	if port != "" {
		env.set("PORT", port)
	}
	for _, v := range appEnv(r.cfg, a) {
		if overridden(v.Name, port != "") {
			continue
		}
		switch {
		case v.parts == nil:
			r.warnEnv(a, v.global, "env."+v.Name, "%s is not text and env references: rendered as the value it has on this machine", shortSource(v.Source))
		case v.hasRefs():
			r.warnEnv(a, v.global, "env."+v.Name, "%s: rendered as %s, which Nomad expands when it starts the task from the task's environment (NOMAD_* variables, node attributes, template env files); set %s there", shortSource(v.Source), strings.Join(braced(v.refNames()), ", "), strings.Join(v.refNames(), ", "))
		}
		at, path := v.at(a)
		if bad := nomadEnvName(v.Name); bad != "" {
			rng, _ := r.places.find(at, path...)
			r.refuseValue(rng, "the variable name", "", v.Name, bad)
		}
		val := v.render(func(x string) string { return "${" + x + "}" }, func(text string) string {
			return r.text(at, path, "the variable "+v.Name, text, nomadText)
		})
		env.set(v.Name, val)
	}
	return env
}

// nomadEnvName checks a variable name for a task's env, which Nomad passes
// to the process as NAME=VALUE.
func nomadEnvName(name string) string {
	if bad := jsonText(name); bad != "" {
		return bad
	}
	if name == "" || strings.ContainsAny(name, "=\x00") {
		return "an environment variable name cannot be empty or hold \"=\" or NUL"
	}
	return ""
}

func (r *renderer) nomadRestart(a *hclconfig.App) obj {
	rs := a.Restart
	p := obj{}
	switch rs.Policy {
	case hclconfig.RestartNever:
		p.set("Attempts", 0)
		r.warnApp(a, "restart.policy", `"never": Nomad fails the allocation at its first exit and reschedules it; a run-once app is a batch job or a prestart task`)
	case hclconfig.RestartOnFailure:
		p.set("Attempts", rs.MaxRestarts)
		if r.written(a, "restart", "policy") {
			r.warnApp(a, "restart.policy", `"on-failure": Nomad restarts a service task whatever its exit status`)
		}
	default:
		p.set("Attempts", rs.MaxRestarts)
	}
	p.set("Interval", nanos(rs.Window))
	p.set("Delay", nanos(rs.Backoff))
	// Give up, as clusterrun does; Nomad then reschedules the allocation.
	p.set("Mode", "fail")
	if rs.Policy != hclconfig.RestartNever {
		if rs.MaxBackoff != hclconfig.DefaultMaxBackoff && rs.MaxBackoff > rs.Backoff {
			r.warnApp(a, "restart.max_backoff", "Nomad waits the same delay before every restart; the delay does not double")
		}
		if rs.MinUptime != hclconfig.DefaultMinUptime {
			r.warnApp(a, "restart.min_uptime", "Nomad has no minimum uptime: every restart counts against attempts within interval")
		}
	}
	return p
}

func (r *renderer) nomadUpdate(a *hclconfig.App, hasPorts bool) obj {
	u := obj{}
	u.set("MaxParallel", a.Reload.Parallel)
	rd := a.Ready
	checks := hasPorts && (rd.Check == hclconfig.ReadyHTTP || rd.Check == hclconfig.ReadyTCP ||
		a.Health.Check == hclconfig.HealthHTTP || a.Health.Check == hclconfig.HealthTCP)
	var minHealthy time.Duration
	switch rd.Check {
	case hclconfig.ReadyDelay:
		minHealthy = rd.Delay
	case hclconfig.ReadyNotify:
		r.warnApp(a, "ready.check", `"notify" has no Nomad check: an allocation is healthy once its task runs`)
	case hclconfig.ReadyExit:
		r.warnApp(a, "ready.check", `a one-shot step ("exit") is a batch job, or a task with lifecycle { hook = "prestart" } in the groups that depend on it, on Nomad; a service task is restarted after it exits`)
	case hclconfig.ReadyHTTP, hclconfig.ReadyTCP:
		if !hasPorts {
			r.warnApp(a, "ready.check", "the app has no port Nomad can check: an allocation is healthy once its task runs")
		}
	}
	if checks {
		u.set("HealthCheck", "checks")
	} else {
		u.set("HealthCheck", "task_states")
	}
	u.set("MinHealthyTime", nanos(minHealthy))
	// Not healthy within the ready timeout is a failed start.
	deadline := rd.Timeout
	if deadline <= minHealthy {
		deadline = minHealthy + rd.Timeout
	}
	u.set("HealthyDeadline", nanos(deadline))
	if deadline >= 10*time.Minute {
		u.set("ProgressDeadline", nanos(deadline+time.Minute))
	}
	return u
}

func (r *renderer) nomadServices(a *hclconfig.App, labels []string) list {
	var checks list
	rd, h := a.Ready, a.Health
	if rd.Check == hclconfig.ReadyHTTP || rd.Check == hclconfig.ReadyTCP {
		c := obj{{"Name", "ready"}, {"Type", string(rd.Check)}}
		if rd.Check == hclconfig.ReadyHTTP {
			c.set("Path", r.text(a, []any{"ready", "path"}, fmt.Sprintf("the ready path of app %q", a.Name), rd.Path, nomadText))
		}
		c.set("Interval", nanos(2*time.Second))
		c.set("Timeout", nanos(time.Second))
		checks = append(checks, c)
	}
	switch h.Check {
	case hclconfig.HealthHTTP, hclconfig.HealthTCP:
		if len(labels) == 0 {
			r.warnApp(a, "health.check", "the app has no port Nomad can check: no health check")
			break
		}
		c := obj{{"Name", "health"}, {"Type", string(h.Check)}}
		if h.Check == hclconfig.HealthHTTP {
			c.set("Path", r.text(a, []any{"health", "path"}, fmt.Sprintf("the health path of app %q", a.Name), h.Path, nomadText))
		}
		c.set("Interval", nanos(h.Interval))
		c.set("Timeout", nanos(h.Timeout))
		// Failing this many checks in a row restarts the task.
		c.set("CheckRestart", obj{{"Limit", h.Failures}})
		checks = append(checks, c)
	case hclconfig.HealthWatchdog:
		r.warnApp(a, "health.check", `"watchdog" has no Nomad check: add an http or tcp check the app answers`)
	}
	var out list
	for i, label := range labels {
		s := obj{}
		s.set("Name", dnsLabel(a.Name+"-"+label))
		s.set("PortLabel", label)
		s.set("Provider", "nomad")
		if i == 0 {
			// The checks probe the instance's own port: the first
			// listener's.
			s.set("Checks", checks)
		}
		out = append(out, s)
	}
	return out
}
