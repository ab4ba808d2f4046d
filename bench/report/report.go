// Package report holds what the benchmark drivers share: the header that
// names the command and the machine, min/median/max formatting, and a few
// process helpers.
package report

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/clusterrun/clusterrun/proc"
)

// Header prints the title, the exact command, the date, the machine and the
// tool versions, so that a table can be compared with one from elsewhere.
func Header(title, pm2Bin string, notes ...string) {
	host, _ := os.Hostname()
	fmt.Printf("# %s\n\n", title)
	fmt.Printf("command: %s\n", strings.Join(os.Args, " "))
	fmt.Printf("date:    %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("machine: %s, %d CPUs, %s, %s\n", host, runtime.NumCPU(), CPUModel(), memTotal())
	fmt.Printf("kernel:  %s\n", firstLine("uname", "-sr"))
	fmt.Printf("go:      %s; node: %s; pm2: %s\n", runtime.Version(), firstLine("node", "--version"), pm2Version(pm2Bin))
	for _, n := range notes {
		fmt.Println(n)
	}
}

// Summary returns the minimum, median and maximum of the finite values
// (NaN and infinities are failed measurements, left out); the median of an
// even count is the mean of the middle two. n is how many values counted;
// with none, all three are NaN. Every benchmark's medians come from here.
func Summary(values []float64) (lo, median, hi float64, n int) {
	v := make([]float64, 0, len(values))
	for _, x := range values {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN(), math.NaN(), math.NaN(), 0
	}
	sort.Float64s(v)
	median = v[len(v)/2]
	if len(v)%2 == 0 {
		median = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return v[0], median, v[len(v)-1], len(v)
}

// Stat formats min / median / max of the finite values (one value if they
// are all equal), or "-" if there is none.
func Stat(values []float64, format string) string {
	lo, med, hi, n := Summary(values)
	if n == 0 {
		return "-"
	}
	one := func(x float64) string { return fmt.Sprintf(format, x) }
	if lo == hi {
		return one(lo)
	}
	return one(lo) + " / " + one(med) + " / " + one(hi)
}

// Values applies f to every x, for Stat and Median.
func Values[T any](xs []T, f func(T) float64) []float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	return v
}

// Median returns the median of the finite values (see Summary), NaN for
// none.
func Median(values []float64) float64 {
	_, med, _, _ := Summary(values)
	return med
}

// Ratio formats a/b, or "n/a" when either is unknown (NaN) or b is 0.
func Ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Memory returns the summed PSS and USS of the processes pids, from
// /proc/PID/smaps_rollup (Linux); one that is gone counts nothing.
func Memory(pids ...int) proc.Memory {
	m, _ := proc.ProcessMemory(pids...)
	return m
}

// pm2Version reads the version from the package.json of the pm2 that
// pm2Bin (node_modules/.bin/pm2) links to. Running `pm2 --version` would do,
// but any pm2 command starts a daemon in ~/.pm2 unless PM2_HOME says
// otherwise, and that daemon would outlive the benchmark.
func pm2Version(pm2Bin string) string {
	if pm2Bin == "" {
		return "-"
	}
	bin, err := filepath.EvalSymlinks(pm2Bin)
	if err != nil {
		return "?"
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(bin), "..", "package.json"))
	if err != nil {
		return "?"
	}
	var pkg struct{ Version string }
	if json.Unmarshal(b, &pkg) != nil || pkg.Version == "" {
		return "?"
	}
	return pkg.Version
}

func firstLine(name string, args ...string) string {
	if name == "" {
		return "-"
	}
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "?"
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// CPUModel returns the "model name" of /proc/cpuinfo, or GOARCH without one.
func CPUModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			_, v, _ := strings.Cut(l, ":")
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "MemTotal:") {
			f := strings.Fields(l)
			if kb, err := strconv.Atoi(f[1]); err == nil {
				return fmt.Sprintf("%.0f GiB RAM", float64(kb)/(1<<20))
			}
		}
	}
	return "?"
}
