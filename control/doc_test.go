package control

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docs/api.md documents every endpoint of the router, and nothing else:
// each "### METHOD /path" heading is a route, each route has a heading,
// and each section shows a curl over the unix socket.
func TestAPIDocMatchesRouter(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile(`(?m)^### (GET|POST) (/\S*)$`)
	doc := string(b)
	locs := heading.FindAllStringSubmatchIndex(doc, -1)
	var documented []string
	for i, l := range locs {
		ep := doc[l[2]:l[3]] + " " + doc[l[4]:l[5]]
		// The docs write an instance as {app}.{n}; the router has one
		// path segment for it.
		ep = strings.Replace(ep, "{app}.{n}", "{instance}", 1)
		documented = append(documented, ep)
		end := len(doc)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		section := doc[l[1]:end]
		if !strings.Contains(section, "curl ") || !strings.Contains(section, "--unix-socket") {
			t.Errorf("docs/api.md: %s has no curl --unix-socket example", ep)
		}
		if m := doc[l[2]:l[3]]; m == "POST" && !strings.Contains(section, "-X POST") {
			t.Errorf("docs/api.md: the example of %s does not POST", ep)
		}
	}
	routes := Routes()
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("docs/api.md does not document %s (a heading \"### %s\")", r, r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routes, d) {
			t.Errorf("docs/api.md documents %s, which the router does not serve", d)
		}
	}
}
