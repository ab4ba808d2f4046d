package export

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/clusterrun/clusterrun/hclconfig"
)

// docMarker names a generated file in a docs page: the block after
// "<!-- export FORMAT [--runner]: FILE -->" is that file, as export
// renders the page's first hcl block.
var docMarker = regexp.MustCompile("(?s)<!-- export (\\w+)( --runner)?: (\\S+) -->\n```(\\w+)\n(.*?)```")

// TestDocsShowWhatExportWrites re-renders the files shown in
// docs/systemd.md and docs/kubernetes.md from the config on the same page
// and compares them (go test ./export -update rewrites them).
func TestDocsShowWhatExportWrites(t *testing.T) {
	for _, page := range []string{"../docs/systemd.md", "../docs/kubernetes.md"} {
		doc, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		hcl := regexp.MustCompile("(?s)```hcl\n(.*?)```").FindSubmatch(doc)
		if hcl == nil {
			t.Fatalf("%s has no hcl block", page)
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "cluster.hcl")
		if err := os.WriteFile(path, hcl[1], 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, _, diags := hclconfig.Load(path)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", page, diags)
		}
		out := docMarker.ReplaceAllFunc(doc, func(m []byte) []byte {
			g := docMarker.FindSubmatch(m)
			opts := Options{Name: "shop", Dir: "/srv/shop", CPUs: 4, Runner: len(g[2]) > 0, Image: "registry.example.com/shop:1.4", Replicas: 3}
			files, _, err := Render(string(g[1]), cfg, opts)
			if err != nil {
				t.Fatalf("%s: %v", page, err)
			}
			for _, f := range files {
				if f.Name == string(g[3]) {
					return []byte("<!-- export " + string(g[1]) + string(g[2]) + ": " + f.Name + " -->\n```" + string(g[4]) + "\n" + string(f.Data) + "```")
				}
			}
			t.Errorf("%s: export renders no %s", page, g[3])
			return m
		})
		if n := len(docMarker.FindAll(doc, -1)); n < 2 {
			t.Errorf("%s shows %d generated files", page, n)
		}
		if *update {
			if err := os.WriteFile(page, out, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if !bytes.Equal(out, doc) {
			t.Errorf("%s does not show what export writes now (go test ./export -update rewrites it)", page)
		}
	}
}
