package harness

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clusterrun/clusterrun/bench/report"
)

// External runs N instances of an app, each binding its own private port
// (the Go app without LISTEN_FDS binds 127.0.0.1:$PORT, hello.js
// listen(PORT)), behind a proxy users put in front of such instances
// instead of clusterrun's: haproxy, nginx or Caddy from Debian, with a
// config generated for the run on private ports, in the proxy's default
// threads/workers. Nothing supervises the instances.
type External struct {
	Kind *ProxyKind
	App  App
	N    int
	Work string

	dir  string
	log  string
	apps []*proc
	px   *proc
}

// ProxyKind is one third-party proxy setup. Adding one (an HTTP-aware
// mode, another balancer) is a new entry in ProxyKinds: a binary, its
// arguments and a config.
type ProxyKind struct {
	// Name is the target's name.
	Name string
	// Bin is the program, looked up on PATH; Package the Debian packages
	// that bring it (run.sh installs them).
	Bin     string
	Package string
	// File is the config's file name in the run's directory; Config
	// renders it for the public port, the instances' ports and the
	// directory (for pid and temp files); Args are the arguments that run
	// Bin in the foreground on it.
	File   string
	Config func(port int, backends []int, dir string) string
	Args   func(cfg, dir string) []string
	// Env is added to the proxy's environment (Caddy's data and config
	// homes in the run's directory).
	Env func(dir string) []string
	// Workers: the data path is the process and its children (nginx's
	// master and workers), not the process alone.
	Workers bool
}

// ProxyKinds are the third-party proxies the benchmark knows, by target
// name. haproxy and nginx forward bytes (TCP), as clusterrun's proxy mode
// does; the -http ones parse HTTP and keep connections to the instances
// open, to compare with an HTTP-aware mode.
var ProxyKinds = map[string]*ProxyKind{
	"haproxy": {
		Name: "haproxy", Bin: "haproxy", Package: "haproxy", File: "haproxy.cfg",
		Config: func(port int, bs []int, dir string) string { return haproxyConfig("tcp", port, bs) },
		Args:   haproxyArgs,
	},
	"nginx": {
		Name: "nginx", Bin: "nginx", Package: "nginx libnginx-mod-stream", File: "nginx.conf", Workers: true,
		Config: func(port int, bs []int, dir string) string {
			return nginxConfig(dir, fmt.Sprintf(`stream {
    upstream instances {
        least_conn;
%s    }
    server {
        listen 127.0.0.1:%d;
        proxy_pass instances;
    }
}
`, servers(bs, "        server 127.0.0.1:%d;\n"), port), true)
		},
		Args: nginxArgs,
	},
	"haproxy-http": {
		Name: "haproxy-http", Bin: "haproxy", Package: "haproxy", File: "haproxy.cfg",
		Config: func(port int, bs []int, dir string) string { return haproxyConfig("http", port, bs) },
		Args:   haproxyArgs,
	},
	"nginx-http": {
		Name: "nginx-http", Bin: "nginx", Package: "nginx", File: "nginx.conf", Workers: true,
		Config: func(port int, bs []int, dir string) string { return nginxHTTPConfig(port, bs, dir, "") },
		Args:   nginxArgs,
	},
	// nginx-http-fwd does the work clusterrun's http mode does per request
	// and the nginx-http anchor does not: it keeps the client's
	// Host and sends the instance X-Forwarded-For, -Proto, -Host and
	// Forwarded, which the app then parses.
	"nginx-http-fwd": {
		Name: "nginx-http-fwd", Bin: "nginx", Package: "nginx", File: "nginx.conf", Workers: true,
		Config: func(port int, bs []int, dir string) string {
			return nginxHTTPConfig(port, bs, dir, `            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header Forwarded "for=$remote_addr;host=\"$http_host\";proto=$scheme";
`)
		},
		Args: nginxArgs,
	},
	"caddy-http": {
		Name: "caddy-http", Bin: "caddy", Package: "caddy", File: "Caddyfile",
		Config: func(port int, bs []int, dir string) string {
			return fmt.Sprintf(`{
	admin off
	auto_https off
}
http://127.0.0.1:%d {
	reverse_proxy %s{
		lb_policy least_conn
	}
}
`, port, servers(bs, "127.0.0.1:%d "))
		},
		Args: func(cfg, dir string) []string { return []string{"run", "--config", cfg, "--adapter", "caddyfile"} },
		Env: func(dir string) []string {
			return []string{"XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "HOME=" + dir}
		},
	},
}

// nginxHTTPConfig is nginx proxy_pass over an upstream keep-alive pool
// (least_conn), with extra proxy_set_header lines.
func nginxHTTPConfig(port int, bs []int, dir, extra string) string {
	return nginxConfig(dir, fmt.Sprintf(`http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    upstream instances {
        least_conn;
%[2]s        keepalive 64;
    }
    server {
        listen 127.0.0.1:%[3]d;
        location / {
            proxy_pass http://instances;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
%[4]s        }
    }
}
`, dir, servers(bs, "        server 127.0.0.1:%d;\n"), port, extra), false)
}

func servers(ports []int, format string) string {
	var b strings.Builder
	for _, p := range ports {
		fmt.Fprintf(&b, format, p)
	}
	return b.String()
}

// haproxyConfig is a listener in mode on port, leastconn over the
// instances. maxconn 4096 fits a descriptor limit of 10,000.
func haproxyConfig(mode string, port int, bs []int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global\n    maxconn 4096\n\ndefaults\n    mode %s\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n", mode)
	if mode == "http" {
		b.WriteString("    option http-keep-alive\n    timeout http-keep-alive 60s\n")
	}
	fmt.Fprintf(&b, "\nlisten bench\n    bind 127.0.0.1:%d\n    balance leastconn\n", port)
	for i, p := range bs {
		fmt.Fprintf(&b, "    server i%d 127.0.0.1:%d\n", i, p)
	}
	return b.String()
}

func haproxyArgs(cfg, dir string) []string { return []string{"-db", "-f", cfg} }

// nginxConfig wraps a stream or http block in what nginx needs to run
// unprivileged in dir, in the foreground, with its default worker count.
func nginxConfig(dir, block string, stream bool) string {
	mod := ""
	if stream {
		mod = "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n"
	}
	return fmt.Sprintf(`%sworker_processes auto;
daemon off;
pid %s/nginx.pid;
error_log %s/error.log;
events {
    worker_connections 4096;
}
%s`, mod, dir, dir, block)
}

func nginxArgs(cfg, dir string) []string {
	return []string{"-c", cfg, "-p", dir, "-e", filepath.Join(dir, "error.log")}
}

func (e *External) Name() string { return e.Kind.Name }

func (e *External) Supervisor() int {
	if e.px == nil {
		return 0
	}
	return e.px.cmd.Process.Pid
}

// DataPath is the proxy's processes: the one started, and for nginx its
// workers.
func (e *External) DataPath() []int {
	pid := e.Supervisor()
	if pid == 0 {
		return nil
	}
	if !e.Kind.Workers {
		return []int{pid}
	}
	return append([]int{pid}, children(pid)...)
}

func (e *External) Log() string { return tail(e.log) }

func (e *External) Start(ctx context.Context, port int) error {
	dir, err := os.MkdirTemp(e.Work, e.Kind.Name+"-")
	if err != nil {
		return err
	}
	e.dir = dir
	logf, path, err := newLog(dir, e.Kind.Name)
	if err != nil {
		return err
	}
	defer logf.Close()
	e.log = path
	var ports []int
	for i := 0; i < e.N; i++ {
		p, err := report.FreePort()
		if err != nil {
			return err
		}
		ports = append(ports, p)
		env := childEnv("PORT="+strconv.Itoa(p), "CLUSTERRUN_INSTANCE="+strconv.Itoa(i))
		a, err := startProc(e.App.Command, env, logf, nil)
		if err != nil {
			return fmt.Errorf("cannot start instance %d: %w", i, err)
		}
		e.apps = append(e.apps, a)
	}
	for i, p := range ports {
		if err := waitListening(ctx, p, 60*time.Second, e.apps[i].exited); err != nil {
			return fmt.Errorf("instance %d on port %d: %w", i, p, err)
		}
	}
	cfg := filepath.Join(dir, e.Kind.File)
	if err := os.WriteFile(cfg, []byte(e.Kind.Config(port, ports, dir)), 0o644); err != nil {
		return err
	}
	var extra []string
	if e.Kind.Env != nil {
		extra = e.Kind.Env(dir)
	}
	bin, err := exec.LookPath(e.Kind.Bin)
	if err != nil {
		return fmt.Errorf("%s is not installed (apt-get install %s): %w", e.Kind.Bin, e.Kind.Package, err)
	}
	e.px, err = startProc(append([]string{bin}, e.Kind.Args(cfg, dir)...), childEnv(extra...), logf, nil)
	if err != nil {
		return err
	}
	return waitListening(ctx, port, 30*time.Second, e.px.exited)
}

func (e *External) Stop() {
	if e.px != nil {
		e.px.signal(syscall.SIGTERM)
		e.px.waitOrKill(10 * time.Second)
		e.px = nil
	}
	for _, a := range e.apps {
		a.signal(syscall.SIGTERM)
	}
	for _, a := range e.apps {
		a.waitOrKill(10 * time.Second)
	}
	e.apps = nil
}

// waitListening waits until 127.0.0.1:port accepts a connection.
func waitListening(ctx context.Context, port int, limit time.Duration, exited <-chan struct{}) error {
	deadline := time.After(limit)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before listening on %s", addr)
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("not listening on %s within %s", addr, limit)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// children returns the pids of pid's child processes.
func children(pid int) []int {
	var out []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}
