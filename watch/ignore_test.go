package watch

import "testing"

func TestIgnored(t *testing.T) {
	for _, tc := range []struct {
		pats []string
		rel  string
		want bool
	}{
		{[]string{"node_modules"}, "node_modules", true},
		{[]string{"node_modules"}, "node_modules/a/b.js", true},
		{[]string{"node_modules"}, "web/node_modules/a.js", true},
		{[]string{"node_modules"}, "web/node_modules_x/a.js", false},
		{[]string{"*.tmp"}, "a.tmp", true},
		{[]string{"*.tmp"}, "x/y/a.tmp", true},
		{[]string{"*.tmp"}, "a.tmpl", false},
		{[]string{"**/*.log"}, "a.log", true},
		{[]string{"**/*.log"}, "x/y/a.log", true},
		{[]string{"**/*.log"}, "x/y/a.log.1", false},
		{[]string{"logs/*.log"}, "logs/a.log", true},
		{[]string{"logs/*.log"}, "x/logs/a.log", false},
		{[]string{"build/out"}, "build/out/x.js", true},
		{[]string{"build/out"}, "build/outx", false},
		{[]string{"/dist"}, "dist/a.js", true},
		{[]string{"/dist"}, "web/dist/a.js", false},
		{[]string{"./dist/"}, "dist", true},
		{[]string{"cache/"}, "a/cache/b", true},
		{[]string{"src/**/gen"}, "src/gen/a.go", true},
		{[]string{"src/**/gen"}, "src/x/y/gen/a.go", true},
		{[]string{"src/**/gen"}, "src/x/y/genx/a.go", false},
		{[]string{".git", "*.swp"}, ".git/objects/ab", true},
		{[]string{".git", "*.swp"}, "src/.main.go.swp", true},
		{[]string{".git", "*.swp"}, "src/main.go", false},
		{[]string{"**"}, "anything/at/all", true},
		{[]string{"node_modules"}, ".", false},
		{nil, "a", false},
	} {
		pats, err := compilePatterns(tc.pats)
		if err != nil {
			t.Fatal(err)
		}
		if got := ignored(pats, tc.rel); got != tc.want {
			t.Errorf("ignored(%q, %q) = %v, want %v", tc.pats, tc.rel, got, tc.want)
		}
	}
}

func TestCompilePatternsErrors(t *testing.T) {
	for _, p := range []string{"", "/", "[a", "a//b", "./"} {
		if _, err := compilePatterns([]string{p}); err == nil {
			t.Errorf("compilePatterns(%q): no error", p)
		}
	}
}
