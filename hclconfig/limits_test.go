package hclconfig

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// hangBound tells a hang (the unbounded code took minutes, or never ended)
// from a slow run. Cost is asserted by allocation, which a loaded machine or
// -race does not change; a bound tight enough to assert speed would flake on
// a busy 2-core CI machine. What is bounded is the CPU time of the thread
// that ran the code, where the system tells it (Linux): the machine's other
// work does not count there, where a wall clock counted it (50,000 errors
// took 11 s of wall time under -race beside other engineers' builds).
const hangBound = 10 * time.Second

// measure runs f once and returns how long it took (the CPU time of its
// thread, see hangBound) and how many bytes it allocated.
func measure(f func()) (time.Duration, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadTime()
	f()
	elapsed := threadTime() - start
	runtime.ReadMemStats(&after)
	return elapsed, after.TotalAlloc - before.TotalAlloc
}

// deepFile is `env = { X = [[[...]]] }` nested depth deep: before the
// depth limit, 100,000 levels overflowed the parser's stack (a fatal error
// that recover cannot catch) and 50,000 took 773 MB.
func deepFile(depth int) []byte {
	var b bytes.Buffer
	b.WriteString("app \"a\" {\n  command = [\"x\"]\n  env = { X = ")
	b.WriteString(strings.Repeat("[", depth))
	b.WriteString(strings.Repeat("]", depth))
	b.WriteString(" }\n}\n")
	return b.Bytes()
}

func TestDeepNesting(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	tests := []struct {
		depth   int
		summary string
	}{
		{100_000, "Nesting too deep"},
		{1_000_000, "File too large"}, // 2 MB: the size limit refuses it first
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.depth), func(t *testing.T) {
			src := deepFile(tt.depth)
			var diags []string
			var out bytes.Buffer
			elapsed, alloc := measure(func() {
				cfg, files, d := Parse("deep.hcl", src)
				if cfg != nil {
					t.Error("config from a file nested too deep")
				}
				for _, x := range d {
					diags = append(diags, x.Summary)
				}
				if err := WriteDiagnostics(&out, files, d, 80, false); err != nil {
					t.Error(err)
				}
			})
			t.Logf("depth %d (%d bytes): Parse+render %v, %.1f MB allocated", tt.depth, len(src), elapsed, float64(alloc)/(1<<20))
			if len(diags) != 1 || diags[0] != tt.summary {
				t.Errorf("diagnostics %q, want one %q", diags, tt.summary)
			}
			if elapsed > hangBound {
				t.Errorf("took %v: a hang", elapsed)
			}
			if out.Len() > 4096 {
				t.Errorf("rendered %d bytes; a long line must be cut:\n%.600s", out.Len(), out.String())
			}
		})
	}

	// The depth check on a whole 1 MiB of shallow tokens, read to the
	// end, with the deep part last: it stops there, with its position.
	flat := bytes.Repeat([]byte("[1,1],"), (maxFileSize-200)/6)
	src := append(append([]byte("env = { X = ["), flat...), deepFile(100)...)
	var diags hcl.Diagnostics
	elapsed, alloc := measure(func() { diags = checkSyntaxLimits("deep.hcl", src) })
	t.Logf("depth check, 1 MiB of shallow tokens then depth 100: %v, %.1f MB allocated", elapsed, float64(alloc)/(1<<20))
	if len(diags) != 1 || elapsed > hangBound {
		t.Fatalf("depth check: %v in %v", diags, elapsed)
	}
	if at := diags[0].Subject; at.Start.Line != 3 || src[at.Start.Byte] != '[' {
		t.Errorf("the error points at %v, want the 65th \"[\" on line 3", at)
	}
}

// TestDepthLimitAllowsRealConfigs: the limit counts nesting, not size, so
// long flat lists and deep-but-sane expressions load.
func TestDepthLimitAllowsRealConfigs(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	nested := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	ops := strings.Repeat("1 + ", 30) + "1"
	list := strings.Repeat(`"a", `, 20000)
	src := fmt.Sprintf(`
env = {
  A = length(%s)
  B = %s
  C = length([%s])
  D = "%%{ if true }${upper("x")}%%{ endif }%%{ for x in ["a"] }${x}%%{ endfor }"
  E = true ? 1 : false ? 2 : 3
}
app "a" {
  command = ["x"]
}
`, nested, ops, list)
	cfg, files, diags := Parse("ok.hcl", []byte(src))
	if diags.HasErrors() {
		var b bytes.Buffer
		_ = WriteDiagnostics(&b, files, diags, 0, false)
		t.Fatalf("%s", b.String())
	}
	if got := cfg.Env; got["A"] != "1" || got["B"] != "31" || got["C"] != "20000" || got["D"] != "Xa" || got["E"] != "1" {
		t.Errorf("env = %v", got)
	}

	// 64 levels are allowed, 65 are not.
	for depth, wantErr := range map[int]bool{63: false, 65: true} {
		src := fmt.Sprintf("env = { X = length(%s%s) }\napp \"a\" { command = [\"x\"] }\n", strings.Repeat("[", depth-2), strings.Repeat("]", depth-2))
		_, _, diags := Parse("d.hcl", []byte(src))
		if diags.HasErrors() != wantErr {
			t.Errorf("depth %d: errors = %v, want %v", depth, diags, wantErr)
		}
	}
}

func TestNestingShapes(t *testing.T) {
	for _, tt := range []struct {
		name string
		expr func(n int) string
	}{
		{"brackets", func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }},
		{"parens", func(n int) string { return strings.Repeat("(", n) + "1" + strings.Repeat(")", n) }},
		{"objects", func(n int) string { return strings.Repeat("{a=", n) + "1" + strings.Repeat("}", n) }},
		{"interpolations", func(n int) string { return strings.Repeat(`"${`, n) + "1" + strings.Repeat(`}"`, n) }},
		{"negations", func(n int) string { return strings.Repeat("!", n) + "true" }},
		{"minus", func(n int) string { return strings.Repeat("-", n) + "1" }},
		{"conditionals", func(n int) string { return strings.Repeat("true ? 1 : ", n) + "1" }},
		{"operators", func(n int) string { return strings.Repeat("1 + ", n) + "1" }},
		{"index steps", func(n int) string { return "[1]" + strings.Repeat("[0]", n) }},
		{"splats", func(n int) string { return "[1]" + strings.Repeat("[*]", n) }},
		{"template ifs", func(n int) string {
			return `"` + strings.Repeat("%{ if true }", n) + strings.Repeat("%{ endif }", n) + `"`
		}},
		{"heredoc interpolations", func(n int) string {
			return "<<EOT\n" + strings.Repeat("${", n) + "1" + strings.Repeat("}", n) + "\nEOT\n"
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range []int{70, 100_000} {
				src := "env = { X = " + tt.expr(n) + " }\n"
				diags := checkSyntaxLimits("x.hcl", []byte(src))
				if len(diags) != 1 || diags[0].Summary != "Nesting too deep" {
					t.Errorf("depth %d: diagnostics %v, want Nesting too deep", n, diags)
				}
			}
			// And at a depth the parser handles, the file parses (or fails
			// for its own reasons) without the limit in the way.
			src := "env = { X = " + tt.expr(20) + " }\n"
			if diags := checkSyntaxLimits("x.hcl", []byte(src)); len(diags) != 0 {
				t.Errorf("depth 20: %v", diags)
			}
		})
	}
}

func TestFileSize(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	dir := t.TempDir()
	big := filepath.Join(dir, "cluster.hcl")
	content := "# " + strings.Repeat("x", maxFileSize) + "\n"
	if err := os.WriteFile(big, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, files, diags := Load(big)
	if cfg != nil || len(diags) != 1 || diags[0].Summary != "File too large" {
		t.Fatalf("Load = %v, %v", cfg, diags)
	}
	want := fmt.Sprintf("The file is %s bytes, more than the 1 MiB a config may have.", thousands(int64(len(content))))
	if !strings.HasPrefix(diags[0].Detail, want) {
		t.Errorf("detail = %q, want it to start %q", diags[0].Detail, want)
	}
	var out bytes.Buffer
	if err := WriteDiagnostics(&out, files, diags, 0, false); err != nil || out.Len() > 2048 {
		t.Errorf("rendered %d bytes, %v:\n%.500s", out.Len(), err, out.String())
	}

	// A Procfile and an env file have the same limit.
	if _, _, diags := Parse(filepath.Join(dir, "Procfile"), []byte(content)); len(diags) != 1 || diags[0].Summary != "File too large" {
		t.Errorf("Procfile: %v", diags)
	}
	if err := os.WriteFile(filepath.Join(dir, "big.env"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, diags = Parse(filepath.Join(dir, "c.hcl"), []byte("env_file = [\"big.env\"]\napp \"a\" { command = [\"x\"] }\n"))
	if len(diags) != 1 || !strings.Contains(diags[0].Detail, "more than the 1 MiB an env file may have") {
		t.Errorf("env file: %v", diags)
	}
	// Exactly 1 MiB is allowed.
	ok := "app \"a\" { command = [\"x\"] }\n"
	ok += "#" + strings.Repeat("x", maxFileSize-len(ok)-2) + "\n"
	if _, _, diags := Parse(filepath.Join(dir, "ok.hcl"), []byte(ok)); diags.HasErrors() {
		t.Errorf("a file of exactly 1 MiB: %v", diags)
	}
}

// manyErrors is a file with n unknown attributes in one app.
func manyErrors(n int) []byte {
	var b bytes.Buffer
	b.WriteString("app \"a\" {\n  command = [\"x\"]\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  u%d = 1\n", i)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

// TestManyErrors: before the cap, rendering 5,000 errors took over 120 s,
// because hcl's writer rescans the file for each. Load and render must
// stay in seconds however many errors there are.
func TestManyErrors(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	cases := []struct {
		name     string
		n        int
		wantErrs int // at least
		src      func(n int) []byte
	}{
		{"unknown attributes", 5_000, 5_000, manyErrors},
		{"unknown attributes", 50_000, 50_000, manyErrors},
		{"apps missing a misspelled command", 20_000, 20_000, func(n int) []byte {
			var b bytes.Buffer
			for i := 0; i < n; i++ {
				fmt.Fprintf(&b, "app \"a%d\" {\n  comand = [\"x\"]\n}\n", i)
			}
			return b.Bytes()
		}},
		{"apps depending on missing apps", 15_000, 15_000, func(n int) []byte {
			var b bytes.Buffer
			for i := 0; i < n; i++ {
				fmt.Fprintf(&b, "app \"a%d\" {\ncommand = [\"x\"]\ndepends_on = [\"b%d\"]\n}\n", i, i)
			}
			return b.Bytes()
		}},
		// Distinct hosts on one port: the overlap check used to compare
		// every pair. Only the wildcard at the end clashes.
		{"listeners on one port", 20_000, 1, func(n int) []byte {
			var b bytes.Buffer
			for i := 0; i < n; i++ {
				fmt.Fprintf(&b, "listener \"l%d\" { address = \"127.0.%d.%d:80\" }\n", i, i/250, i%250)
			}
			b.WriteString("listener \"all\" { address = \":80\" }\n")
			return b.Bytes()
		}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d %s", c.n, c.name), func(t *testing.T) {
			src := c.src(c.n)
			if len(src) > maxFileSize {
				t.Fatalf("test file is %d bytes, over the limit", len(src))
			}
			var out bytes.Buffer
			var errs int
			elapsed, alloc := measure(func() {
				_, files, diags := Parse("many.hcl", src)
				for _, d := range diags {
					if d.Severity == hcl.DiagError {
						errs++
					}
				}
				if err := WriteDiagnostics(&out, files, diags, 100, false); err != nil {
					t.Error(err)
				}
			})
			t.Logf("%d errors (%d bytes): Load+render %v, %.1f MB allocated, %d bytes of output", errs, len(src), elapsed, float64(alloc)/(1<<20), out.Len())
			if elapsed > hangBound {
				t.Errorf("took %v: a hang", elapsed)
			}
			if errs < c.wantErrs {
				t.Errorf("%d errors, want at least %d", errs, c.wantErrs)
			}
			if errs < maxShownDiagnostics {
				return
			}
			last := strings.TrimSpace(out.String()[strings.LastIndex(strings.TrimSpace(out.String()), "\n")+1:])
			if want := fmt.Sprintf("… and %s more errors", thousands(int64(errs-maxShownDiagnostics))); !strings.HasPrefix(last, want) {
				t.Errorf("last line %q, want %q", last, want)
			}
			if n := strings.Count(out.String(), "Error: "); n != maxShownDiagnostics {
				t.Errorf("rendered %d errors, want %d", n, maxShownDiagnostics)
			}
		})
	}
}

func TestMoreLine(t *testing.T) {
	e := &hcl.Diagnostic{Severity: hcl.DiagError}
	w := &hcl.Diagnostic{Severity: hcl.DiagWarning}
	for _, tt := range []struct {
		rest hcl.Diagnostics
		want string
	}{
		{hcl.Diagnostics{e}, "… and 1 more error"},
		{hcl.Diagnostics{e, e}, "… and 2 more errors"},
		{hcl.Diagnostics{w}, "… and 1 more warning"},
		{hcl.Diagnostics{e, w, w}, "… and 1 more error and 2 more warnings"},
	} {
		if got := moreLine(tt.rest); got != tt.want {
			t.Errorf("moreLine = %q, want %q", got, tt.want)
		}
	}
	if got := thousands(4980); got != "4,980" {
		t.Errorf("thousands(4980) = %q", got)
	}
	if got := thousands(1234567); got != "1,234,567" {
		t.Errorf("thousands(1234567) = %q", got)
	}
}

// TestEnvironmentBudget: the global env and env files are copied into
// every app, so a big env file and many apps (or one file named many
// times) would multiply into more memory than the file suggests.
func TestEnvironmentBudget(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	dir := t.TempDir()
	var env bytes.Buffer
	for i := 0; i < 20_000; i++ {
		fmt.Fprintf(&env, "V%d=x\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "big.env"), env.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var apps bytes.Buffer
	apps.WriteString("env_file = [\"big.env\"]\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&apps, "app \"a%d\" {\n  command = [\"x\"]\n}\n", i)
	}
	many := "app \"a\" {\n  command = [\"x\"]\n  env_file = [" + strings.Repeat(`"big.env", `, 50) + "]\n}\n"
	for name, src := range map[string]string{"many apps": apps.String(), "one file named many times": many} {
		var summaries []string
		elapsed, alloc := measure(func() {
			_, _, diags := Parse(filepath.Join(dir, "cluster.hcl"), []byte(src))
			for _, d := range diags {
				summaries = append(summaries, d.Summary)
			}
		})
		t.Logf("%s: %v, %.1f MB allocated", name, elapsed, float64(alloc)/(1<<20))
		if len(summaries) != 1 || summaries[0] != "Environment too large" {
			t.Errorf("%s: diagnostics %q", name, summaries)
		}
	}

	// Five apps with the file are fine.
	var fine bytes.Buffer
	fine.WriteString("env_file = [\"big.env\"]\n")
	for i := 0; i < 5; i++ {
		fmt.Fprintf(&fine, "app \"a%d\" {\n  command = [\"x\"]\n}\n", i)
	}
	if cfg, _, diags := Parse(filepath.Join(dir, "cluster.hcl"), fine.Bytes()); diags.HasErrors() || len(cfg.App("a4").Env) != 20_000 {
		t.Errorf("5 apps: %v", diags)
	}
}

// TestLongValuesInDiagnostics: the values a diagnostic shows ("with env.X
// as ...") are cut short, however long they are.
func TestLongValuesInDiagnostics(t *testing.T) {
	fixedEnviron(t, "BIG="+strings.Repeat("x", 1<<20))
	_, files, diags := Parse("long.hcl", []byte("env = { X = length(env.BIG) }\napp \"a\" { command = [\"x\"] }\n"))
	if !diags.HasErrors() {
		t.Fatal("length of a string loaded")
	}
	var out bytes.Buffer
	if err := WriteDiagnostics(&out, files, diags, 0, false); err != nil {
		t.Fatal(err)
	}
	if out.Len() > 2048 || !strings.Contains(out.String(), `with env.BIG as "xxxxxxxx`) || !strings.Contains(out.String(), `…"`) {
		t.Errorf("%d bytes:\n%.1000s", out.Len(), out.String())
	}
}
