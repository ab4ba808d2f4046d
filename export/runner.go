package export

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
)

// The --runner renderings run clusterrun itself under the engine, on the
// same config, instead of one unit, Deployment or group per app: the
// runner keeps its sockets, readiness, rolling reloads and drains, and the
// engine supervises one process. They follow the runner's conventions:
//
//   - under systemd, clusterrun sends READY=1, and RELOADING=1 then READY=1
//     around each reload (Type=notify-reload), STOPPING=1 when it drains,
//     and WATCHDOG=1 while its loop is healthy;
//   - a listener adopts the socket systemd passes whose FileDescriptorName=
//     is the listener's name, so that a restart keeps its port;
//   - /healthz (the runner's loop answers) and /readyz (every required app
//     has its ready instances, and the runner is not draining) are served
//     on the metrics block's address.

// runnerPaths is where the config and clusterrun are on the target.
func (r *renderer) runnerPaths() (config, dir string) {
	return filepath.Join(r.opts.Dir, filepath.Base(r.cfg.Path)), r.opts.Dir
}

// longestStart is how long "clusterrun up" may take to be ready: the
// longest chain of depends_on, each app's ready timeout after the ones it
// depends on.
func (r *renderer) longestStart() time.Duration {
	return r.longestChain(func(a *hclconfig.App) time.Duration { return a.Ready.Timeout }, func(a *hclconfig.App) []*hclconfig.App {
		var deps []*hclconfig.App
		for _, name := range a.DependsOn {
			if d := r.cfg.App(name); d != nil {
				deps = append(deps, d)
			}
		}
		return deps
	})
}

// longestDrain is how long the runner's drain may take: apps stop in
// parallel, dependents before what they depend on, each within its stop
// timeout before SIGKILL.
func (r *renderer) longestDrain() time.Duration {
	return r.longestChain(func(a *hclconfig.App) time.Duration { return a.Stop.Timeout }, func(a *hclconfig.App) []*hclconfig.App {
		var dependents []*hclconfig.App
		for _, b := range r.cfg.Apps {
			if slices.Contains(b.DependsOn, a.Name) {
				dependents = append(dependents, b)
			}
		}
		return dependents
	})
}

// longestChain is the longest sum of cost along the chains of apps that
// before gives (what must be done before an app starts its own part).
// hclconfig refuses cycles; the depth bound keeps this finite anyway.
func (r *renderer) longestChain(cost func(*hclconfig.App) time.Duration, before func(*hclconfig.App) []*hclconfig.App) time.Duration {
	done := map[string]time.Duration{}
	var chain func(a *hclconfig.App, depth int) time.Duration
	chain = func(a *hclconfig.App, depth int) time.Duration {
		if d, ok := done[a.Name]; ok || depth > len(r.cfg.Apps) {
			return d
		}
		var first time.Duration
		for _, b := range before(a) {
			first = max(first, chain(b, depth+1))
		}
		done[a.Name] = first + cost(a)
		return done[a.Name]
	}
	var longest time.Duration
	for _, a := range r.cfg.Apps {
		longest = max(longest, chain(a, 0))
	}
	return longest
}

// configMapKey is what the API takes as a ConfigMap's data key.
// (The {1,253} makes it the largest of the package's regexps: about 230
// KB compiled.)
var configMapKey = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[-._a-zA-Z0-9]{1,253}$`) })

// readSource reads the config file for a ConfigMap, as hclconfig read it
// (1 MiB at most).
func readSource(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20+1))
	if err != nil {
		return "", err
	}
	if len(b) > 1<<20 {
		return "", fmt.Errorf("%s is over 1 MiB", path)
	}
	return string(b), nil
}

// runnerMargin is added to the start and drain bounds: the runner's own
// start-up, and its exit after the last SIGKILL.
const runnerMargin = 5 * time.Second

// formation says what runs per pod or allocation: "web × 4, worker × 1".
func (r *renderer) formation() string {
	var parts []string
	for _, a := range r.cfg.Apps {
		n, isMax := r.instances(a)
		if isMax {
			parts = append(parts, a.Name+" × one per CPU it sees")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s × %d", a.Name, n))
	}
	return strings.Join(parts, ", ")
}

// healthPort is the port of the metrics address, where the runner serves
// /healthz and /readyz. An engine probes it from outside the container or
// process: a config without a metrics block, or with one on a loopback
// address, is refused with the block to add.
func (r *renderer) healthPort(engine string) int {
	m := r.cfg.Metrics
	fix := `metrics { address = "0.0.0.0:9090" }`
	if m == nil {
		r.refuse(hclRangeNone, "%s probes the runner's /healthz and /readyz, which it serves on the metrics address, and the config has no metrics block. Add one that %s can reach, such as\n  %s\nNothing was written.", engine, engine, fix)
		return 0
	}
	i := strings.LastIndex(m.Address, ":")
	host := strings.Trim(m.Address[:i], "[]")
	port, _ := strconv.Atoi(m.Address[i+1:])
	ip, err := netip.ParseAddr(host)
	if strings.EqualFold(host, "localhost") || err == nil && ip.IsLoopback() {
		r.refuse(r.places.findMetrics("address"), "%s probes the runner's /healthz and /readyz on the metrics address, and %s is a loopback address it cannot reach. Bind every interface, such as\n  %s\nNothing was written.", engine, m.Address, fix)
	}
	return port
}

// runnerListeners are the listeners an engine can hand to the runner or
// publish: tcp with a fixed port, and (for systemd) unix sockets. The
// others are warned about: the runner binds them itself.
func (r *renderer) runnerListeners(engine string, unix bool) []*hclconfig.Listener {
	var out []*hclconfig.Listener
	for _, l := range r.cfg.Listeners {
		switch {
		case l.Network == "unix" && !unix:
			r.warnListener(l, "address", "%s cannot publish a unix socket: the runner binds it inside", engine)
		case l.Network == "tcp" && tcpPort(l) == 0:
			r.warnListener(l, "address", "a random port (%q) cannot be held by %s: the runner binds it itself, and a restart of the runner picks another", l.Address, engine)
		default:
			out = append(out, l)
		}
	}
	return out
}

// systemdRunner renders NAME.service, running clusterrun up, and a socket
// unit per listener, so that systemd holds the ports across restarts of
// the runner.
func (r *renderer) systemdRunner() []File {
	name := dnsLabel(r.opts.Name)
	config, dir := r.runnerPaths()
	var files []File
	var sockets []string
	for _, l := range r.runnerListeners("systemd", true) {
		listen, ok := r.listenStream(l)
		if !ok {
			continue
		}
		unit := name + "-" + l.Name + ".socket"
		sockets = append(sockets, unit)
		var b strings.Builder
		fmt.Fprintf(&b, "# Generated by clusterrun export systemd --runner from %s: listener %q.\n", r.source(), l.Name)
		fmt.Fprintf(&b, "# systemd binds it and passes it to %s.service, named %s: clusterrun adopts\n", name, l.Name)
		b.WriteString("# it instead of binding, so that a restart of the runner keeps the port open\n# and connections wait in its backlog.\n")
		fmt.Fprintf(&b, "\n[Unit]\nDescription=clusterrun listener %s (%s)\nPartOf=%s.service\n", l.Name, r.description(), name)
		fmt.Fprintf(&b, "\n[Socket]\nListenStream=%s\nFileDescriptorName=%s\nService=%s.service\n", listen, l.Name, name)
		if l.Backlog > 0 {
			fmt.Fprintf(&b, "Backlog=%d\n", l.Backlog)
		}
		if l.Mode == hclconfig.ReusePort {
			r.warnListener(l, "mode", "systemd passes one socket for it: the runner's instances share it, as in shared mode, rather than one SO_REUSEPORT socket each")
		}
		b.WriteString("\n[Install]\nWantedBy=sockets.target\n")
		files = append(files, File{Name: unit, Data: []byte(b.String())})
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Generated by clusterrun export systemd --runner from %s.\n", r.source())
	fmt.Fprintf(&b, "# One service that runs every app of the file under clusterrun (%s):\n", r.formation())
	b.WriteString("#   systemctl enable --now " + name + ".service")
	for _, s := range sockets {
		b.WriteString(" " + s)
	}
	b.WriteString("\n")
	if r.opts.NotifyFallback {
		b.WriteString("# systemctl reload runs clusterrun reload, which waits for the rolling reload\n# and fails if it is aborted (Type=notify, for systemd before 253).\n")
	} else {
		b.WriteString("# systemctl reload sends SIGHUP and waits until clusterrun says the rolling\n# reload is over (Type=notify-reload, systemd 253 and later).\n")
	}
	fmt.Fprintf(&b, "\n[Unit]\nDescription=clusterrun (%s)\nAfter=network.target", r.description())
	for _, s := range sockets {
		b.WriteString(" " + s)
	}
	b.WriteString("\n")
	if len(sockets) > 0 {
		fmt.Fprintf(&b, "Requires=%s\n", strings.Join(sockets, " "))
	}
	b.WriteString("\n[Service]\n")
	exe := r.option("the clusterrun binary (--clusterrun)", "ExecStart=", r.opts.Clusterrun, func(s string) (string, string) {
		if !filepath.IsAbs(s) {
			return "", "systemd takes an absolute path here"
		}
		return sdExecWord(s, true)
	})
	file := r.option("the config file's path on the target (--dir)", "ExecStart=", config, func(s string) (string, string) { return sdExecWord(s, false) })
	if r.opts.NotifyFallback {
		b.WriteString("Type=notify\n")
		fmt.Fprintf(&b, "ExecReload=%s reload -f %s\n", exe, file)
	} else {
		// systemctl reload sends SIGHUP, the default ReloadSignal=.
		b.WriteString("Type=notify-reload\n")
	}
	// READY=1 and the rest come from the runner's own pid.
	b.WriteString("NotifyAccess=main\n")
	fmt.Fprintf(&b, "ExecStart=%s up -f %s\n", exe, file)
	fmt.Fprintf(&b, "WorkingDirectory=%s\n", r.option("the config file's directory on the target (--dir)", "WorkingDirectory=", dir, sdPath))
	if len(sockets) > 0 {
		fmt.Fprintf(&b, "Sockets=%s\n", strings.Join(sockets, " "))
	}
	// SIGTERM to clusterrun alone, which drains its apps in order; SIGKILL
	// to everything left only after TimeoutStopSec=.
	b.WriteString("KillMode=mixed\nKillSignal=SIGTERM\n")
	fmt.Fprintf(&b, "TimeoutStartSec=%s\n", sdDuration(r.longestStart()+runnerMargin))
	fmt.Fprintf(&b, "TimeoutStopSec=%s\n", sdDuration(r.longestDrain()+runnerMargin))
	if r.opts.Watchdog > 0 {
		fmt.Fprintf(&b, "WatchdogSec=%s\n", sdDuration(r.opts.Watchdog))
	}
	b.WriteString("Restart=on-failure\nRestartSec=1s\n")
	b.WriteString("\n[Install]\nWantedBy=multi-user.target\n")
	return append([]File{{Name: name + ".service", Data: []byte(b.String())}}, files...)
}

// kubernetesRunner renders a ConfigMap with the config, one Deployment
// whose pods run clusterrun up on it, and a Service for the listeners.
func (r *renderer) kubernetesRunner() []File {
	name := dnsLabel(r.opts.Name)
	config, dir := r.runnerPaths()
	base := filepath.Base(config)
	port := r.healthPort("Kubernetes")
	if r.defaultImage {
		r.warnFile("cluster.hcl names no container image: the Deployment runs image %q (set it with --image); it must hold clusterrun at %s and the apps, their programs and env files under %s", r.opts.Image, r.opts.Clusterrun, dir)
	}
	src, err := readSource(r.cfg.Path)
	if err != nil {
		r.refuse(hclRangeNone, "The config file cannot be read again for the ConfigMap: %v. Nothing was written.", err)
	}
	if bad := jsonText(src); bad != "" {
		r.refuse(hclRangeNone, "The config file cannot go into a ConfigMap: %s. Nothing was written.", bad)
	}
	if !configMapKey().MatchString(base) {
		r.refuse(hclRangeNone, "The config file's name, %q, cannot be a ConfigMap key (letters, digits, \"-\", \"_\" and \".\"): rename it, such as cluster.hcl. Nothing was written.", base)
	}
	labels := r.k8sLabels(name)
	cm := obj{}
	cm.set("apiVersion", "v1")
	cm.set("kind", "ConfigMap")
	cm.set("metadata", obj{{"name", name + "-config"}, {"labels", labels}})
	cm.set("data", obj{{base, src}})

	var ports []k8sPort
	for _, l := range r.runnerListeners("Kubernetes", false) {
		ports = append(ports, k8sPort{name: portName(l.Name), port: tcpPort(l)})
		if host := tcpHost(l); host != "" {
			if ip, err := netip.ParseAddr(host); strings.EqualFold(host, "localhost") || err == nil && ip.IsLoopback() {
				r.warnListener(l, "address", "%s is a loopback address, which the Service cannot reach (it connects to the pod's address): bind 0.0.0.0 for Kubernetes", l.Address)
			}
		}
	}
	var cports list
	for _, p := range ports {
		cports = append(cports, obj{{"name", p.name}, {"containerPort", p.port}, {"protocol", "TCP"}})
	}
	cports = append(cports, obj{{"name", "health"}, {"containerPort", port}, {"protocol", "TCP"}})

	c := obj{}
	c.set("name", "clusterrun")
	c.set("image", r.image())
	c.set("command", list{r.optionText("the clusterrun binary (--clusterrun)", r.opts.Clusterrun, execText), "up", "-f", r.optionText("the config file's path (--dir)", config, execText)})
	c.set("workingDir", r.optionText("the config file's directory (--dir)", dir, execText))
	c.set("ports", cports)
	c.set("volumeMounts", list{obj{{"name", "config"}, {"mountPath", config}, {"subPath", base}, {"readOnly", true}}})
	c.set("readinessProbe", obj{{"httpGet", obj{{"path", "/readyz"}, {"port", "health"}}}, {"periodSeconds", 2}, {"failureThreshold", 2}})
	c.set("livenessProbe", obj{{"httpGet", obj{{"path", "/healthz"}, {"port", "health"}}}, {"periodSeconds", 10}, {"timeoutSeconds", 5}, {"failureThreshold", 3}})
	// The runner answers /healthz once its loop runs, which is at once;
	// the apps' start is what /readyz waits for, within this.
	c.set("startupProbe", obj{{"httpGet", obj{{"path", "/healthz"}, {"port", "health"}}}, {"periodSeconds", 2}, {"failureThreshold", seconds(runnerMargin, 1)}})
	grace := seconds(r.longestDrain()+runnerMargin, 1)
	if r.opts.PreStopDelay > 0 {
		c.set("lifecycle", obj{{"preStop", r.preStop()}})
		grace += seconds(r.opts.PreStopDelay, 0)
	}

	pod := obj{}
	pod.set("terminationGracePeriodSeconds", grace)
	pod.set("containers", list{c})
	pod.set("volumes", list{obj{{"name", "config"}, {"configMap", obj{{"name", name + "-config"}}}}})

	spec := obj{}
	spec.set("replicas", r.opts.Replicas)
	spec.set("selector", obj{{"matchLabels", labels}})
	spec.set("progressDeadlineSeconds", seconds(r.longestStart()+runnerMargin, 1)+60)
	spec.set("strategy", obj{{"type", "RollingUpdate"}, {"rollingUpdate", obj{{"maxSurge", 1}, {"maxUnavailable", 0}}}})
	// A changed file changes the template, which is what makes Kubernetes
	// roll the pods: a ConfigMap's new data alone does not.
	sum := sha256.Sum256([]byte(src))
	meta := obj{{"labels", labels}, {"annotations", obj{{"clusterrun/config-sha256", hex.EncodeToString(sum[:])}}}}
	spec.set("template", obj{{"metadata", meta}, {"spec", pod}})
	dep := obj{}
	dep.set("apiVersion", "apps/v1")
	dep.set("kind", "Deployment")
	dep.set("metadata", obj{{"name", name}, {"labels", labels}})
	dep.set("spec", spec)

	header := func(kind string) string {
		return fmt.Sprintf("# Generated by clusterrun export kubernetes --runner from %s: its %s.\n", r.source(), kind)
	}
	depHeader := header("Deployment") + fmt.Sprintf("# Each pod runs clusterrun up on %s: %s.\n# The %d replicas (--replicas) run %d times that. The pod template carries the\n# file's checksum, so applying the export of a changed file rolls the pods;\n# inside a pod, clusterrun reload replaces instances without a dropped connection.\n", base, r.formation(), r.opts.Replicas, r.opts.Replicas)
	files := []File{
		r.yamlFile(name+"-configmap.yaml", header("ConfigMap"), cm),
		r.yamlFile(name+"-deployment.yaml", depHeader, dep),
	}
	if len(ports) > 0 {
		files = append(files, r.yamlFile(name+"-service.yaml", header("Service"), r.service(nil, name, ports)))
	}
	return files
}

// nomadRunner renders one job with one task that runs clusterrun up,
// checked on the runner's health endpoints.
func (r *renderer) nomadRunner() []File {
	config, dir := r.runnerPaths()
	port := r.healthPort("Nomad")
	var reserved list
	for _, l := range r.runnerListeners("Nomad", false) {
		reserved = append(reserved, obj{{"Label", nomadLabel(l.Name)}, {"Value", tcpPort(l)}})
	}
	reserved = append(reserved, obj{{"Label", "health"}, {"Value", port}})

	task := obj{}
	task.set("Name", "clusterrun")
	task.set("Driver", "raw_exec")
	task.set("Config", obj{{"command", r.optionText("the clusterrun binary (--clusterrun)", r.opts.Clusterrun, nomadText)}, {"args", list{"up", "-f", r.optionText("the config file's path (--dir)", config, nomadText)}}})
	task.set("KillSignal", "SIGTERM")
	task.set("KillTimeout", nanos(r.longestDrain()+runnerMargin))

	checks := list{
		obj{{"Name", "ready"}, {"Type", "http"}, {"Path", "/readyz"}, {"Interval", nanos(2 * time.Second)}, {"Timeout", nanos(time.Second)}},
		obj{{"Name", "alive"}, {"Type", "http"}, {"Path", "/healthz"}, {"Interval", nanos(10 * time.Second)}, {"Timeout", nanos(5 * time.Second)},
			{"CheckRestart", obj{{"Limit", 3}, {"Grace", nanos(r.longestStart() + runnerMargin)}}}},
	}
	g := obj{}
	g.set("Name", "clusterrun")
	g.set("Count", r.opts.Replicas)
	g.set("Networks", list{obj{{"ReservedPorts", reserved}}})
	services := list{obj{{"Name", dnsLabel(r.opts.Name)}, {"PortLabel", "health"}, {"Provider", "nomad"}, {"Checks", checks}}}
	for _, p := range reserved[:len(reserved)-1] {
		label := p.(obj)[0].v.(string)
		services = append(services, obj{{"Name", dnsLabel(r.opts.Name + "-" + label)}, {"PortLabel", label}, {"Provider", "nomad"}})
	}
	g.set("Services", services)
	g.set("Update", obj{{"MaxParallel", 1}, {"HealthCheck", "checks"}, {"MinHealthyTime", nanos(0)}, {"HealthyDeadline", nanos(r.longestStart() + runnerMargin + time.Minute)}})
	g.set("Tasks", list{task})

	job := obj{}
	job.set("ID", r.jobID())
	job.set("Name", r.opts.Name)
	job.set("Type", "service")
	job.set("Datacenters", list{"*"})
	job.set("TaskGroups", list{g})
	job.set("Meta", obj{{"generated-by", "clusterrun export nomad --runner"}, {"source", r.source()}, {"runs", r.formation()}, {"dir", dir}})
	return []File{r.jsonFile(dnsLabel(r.opts.Name)+".nomad.json", obj{{"Job", job}})}
}
