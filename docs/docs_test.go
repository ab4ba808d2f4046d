package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/hashicorp/hcl/v2"
)

// node is one block or attribute of the cluster.hcl schema, by its dotted
// path ("app.ready.check").
type node struct {
	path  string
	block bool
}

// schema reads the cluster.hcl schema from the source of hclconfig: the
// `hcl:"name,kind"` tags of the raw structs gohcl decodes into, starting
// at rawFile. Reading the source keeps the structs unexported; the tags
// are the schema gohcl enforces, so they cannot drift from it.
func schema(t *testing.T) []node {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "hclconfig", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	structs := make(map[string]*ast.StructType)
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok {
				if st, ok := ts.Type.(*ast.StructType); ok {
					structs[ts.Name.Name] = st
				}
			}
			return true
		})
	}
	if structs["rawFile"] == nil {
		t.Fatalf("no type rawFile in %s: the schema moved, update this test", filepath.Join("..", "hclconfig"))
	}

	var out []node
	var walk func(typ, prefix string)
	walk = func(typ, prefix string) {
		st := structs[typ]
		if st == nil {
			t.Fatalf("block type %s not found in hclconfig", typ)
		}
		for _, f := range st.Fields.List {
			if f.Tag == nil {
				continue
			}
			tag, err := strconv.Unquote(f.Tag.Value)
			if err != nil {
				t.Fatal(err)
			}
			name, kind, _ := strings.Cut(reflect.StructTag(tag).Get("hcl"), ",")
			path := prefix + name
			switch kind {
			case "attr", "optional":
				out = append(out, node{path: path})
			case "block":
				out = append(out, node{path: path, block: true})
				walk(elemType(t, f.Type), path+".")
			}
			// label, label_range, def_range, body, remain: not schema.
		}
	}
	walk("rawFile", "")
	return out
}

// elemType is the struct name of a block field: T, *T, []T or []*T.
func elemType(t *testing.T, e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.ArrayType:
			e = x.Elt
		case *ast.Ident:
			return x.Name
		default:
			t.Fatalf("unexpected block field type %T", e)
		}
	}
}

// reference is config.md: the headings, and each attribute table row by
// the dotted path in its first cell.
type reference struct {
	headings []string
	rows     map[string][]string // path -> cells
}

var rowPath = regexp.MustCompile("^\\|\\s*`([a-z_]+(?:\\.[a-z_]+)*)`\\s*\\|")

func readReference(t *testing.T) reference {
	t.Helper()
	b, err := os.ReadFile("config.md")
	if err != nil {
		t.Fatal(err)
	}
	ref := reference{rows: make(map[string][]string)}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") {
			ref.headings = append(ref.headings, line)
			continue
		}
		if m := rowPath.FindStringSubmatch(line); m != nil {
			cells := strings.Split(strings.Trim(line, "| "), "|")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			ref.rows[m[1]] = cells
		}
	}
	return ref
}

// hasBlockHeading: a heading names the block as `path` or `path "NAME"`.
func (r reference) hasBlockHeading(path string) bool {
	for _, h := range r.headings {
		if strings.Contains(h, "`"+path+"`") || strings.Contains(h, "`"+path+" ") {
			return true
		}
	}
	return false
}

// TestReferenceCoversSchema fails when cluster.hcl has a block or an
// attribute that docs/config.md does not document: every block needs a
// heading, every attribute a table row with its type, default and what it
// does. It fails too on a row for an attribute the schema does not have.
func TestReferenceCoversSchema(t *testing.T) {
	nodes := schema(t)
	if len(nodes) < 40 {
		t.Fatalf("read only %d schema nodes from hclconfig: %v", len(nodes), nodes)
	}
	ref := readReference(t)
	known := make(map[string]bool)
	for _, n := range nodes {
		known[n.path] = true
		if n.block {
			if !ref.hasBlockHeading(n.path) {
				t.Errorf("config.md has no heading for the block %s (write one that contains `%s`)", n.path, n.path)
			}
			continue
		}
		cells, ok := ref.rows[n.path]
		switch {
		case !ok:
			t.Errorf("config.md has no row for the attribute %s (a table row whose first cell is `%s`)", n.path, n.path)
		case len(cells) != 4 || cells[1] == "" || cells[2] == "" || len(cells[3]) < 20:
			t.Errorf("config.md's row for %s needs four cells (attribute, type, default, what it does): %q", n.path, cells)
		}
	}
	tops := make(map[string]bool)
	for _, n := range nodes {
		top, _, _ := strings.Cut(n.path, ".")
		tops[top] = true
	}
	var stale []string
	for path := range ref.rows {
		top, _, _ := strings.Cut(path, ".")
		if tops[top] && !known[path] {
			stale = append(stale, path)
		}
	}
	sort.Strings(stale)
	for _, p := range stale {
		t.Errorf("config.md documents %s, which the schema does not have", p)
	}
}

// size is a default in bytes, written in KiB.
type size int

// TestReferenceDefaults checks the defaults config.md gives against
// hclconfig's: the first `value` of the default cell.
func TestReferenceDefaults(t *testing.T) {
	ref := readReference(t)
	for path, want := range map[string]any{
		"listener.mode":            string(hclconfig.Shared),
		"listener.balance":         string(hclconfig.BalanceLeastConn),
		"listener.queue_timeout":   hclconfig.DefaultQueueTimeout,
		"listener.header_timeout":  hclconfig.DefaultHeaderTimeout,
		"listener.idle_timeout":    hclconfig.DefaultIdleTimeout,
		"listener.timeout":         hclconfig.DefaultHTTPTimeout,
		"listener.max_header_size": size(hclconfig.DefaultMaxHeaderSize),
		"listener.max_retry_body":  size(hclconfig.DefaultMaxRetryBody),
		"app.instances":            1,
		"app.ready.check":          string(hclconfig.ReadyDelay),
		"app.ready.delay":          hclconfig.DefaultReadyDelay,
		"app.ready.timeout":        hclconfig.DefaultReadyTimeout,
		"app.health.interval":      hclconfig.DefaultHealthInterval,
		"app.health.timeout":       hclconfig.DefaultHealthTimeout,
		"app.health.failures":      hclconfig.DefaultHealthFailures,
		"app.restart.policy":       string(hclconfig.RestartOnFailure),
		"app.restart.backoff":      hclconfig.DefaultBackoff,
		"app.restart.max_backoff":  hclconfig.DefaultMaxBackoff,
		"app.restart.min_uptime":   hclconfig.DefaultMinUptime,
		"app.restart.max_restarts": hclconfig.DefaultMaxRestarts,
		"app.restart.window":       hclconfig.DefaultWindow,
		"app.stop.signal":          "SIGTERM",
		"app.stop.timeout":         hclconfig.DefaultStopTimeout,
		"app.reload.parallel":      1,
		"app.reload.order":         string(hclconfig.OrderStartFirst),
	} {
		cells, ok := ref.rows[path]
		if !ok || len(cells) < 3 {
			t.Errorf("config.md has no row for %s", path)
			continue
		}
		m := regexp.MustCompile("`([^`]*)`").FindStringSubmatch(cells[2])
		if m == nil {
			t.Errorf("config.md's default for %s has no `value`: %q", path, cells[2])
			continue
		}
		got := strings.Trim(m[1], `"`)
		ok = false
		switch w := want.(type) {
		case string:
			ok = got == w
		case int:
			ok = got == strconv.Itoa(w)
		case time.Duration:
			d, err := time.ParseDuration(got)
			ok = err == nil && d == w
		case size:
			ok = got == strconv.Itoa(int(w)>>10)+"KiB"
		}
		if !ok {
			t.Errorf("config.md gives %s the default %q; hclconfig's is %v", path, got, want)
		}
	}
}

// TestExamplesInDocsAreValid loads every ```hcl block of the docs as a
// cluster.hcl: a documented example must not teach an error. Only a
// program this machine lacks (node, bundle, ...) is forgiven.
func TestExamplesInDocsAreValid(t *testing.T) {
	pages, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```hcl\n(.*?)```")
	n := 0
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range block.FindAllSubmatch(b, -1) {
			n++
			dir := t.TempDir()
			// The examples read a .env, as a project has one.
			if err := os.WriteFile(filepath.Join(dir, ".env"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "cluster.hcl")
			if err := os.WriteFile(path, m[1], 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, diags := hclconfig.Load(path)
			for _, d := range diags {
				if d.Severity == hcl.DiagError && d.Summary != "Program not found" {
					t.Errorf("%s, hcl example %d: %s: %s", page, i+1, d.Summary, d.Detail)
				}
			}
		}
	}
	if n < 3 {
		t.Errorf("found %d hcl examples in docs/*.md, want at least 3", n)
	}
}
