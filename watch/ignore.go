package watch

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// pattern is one compiled ignore glob.
//
// Semantics, gitignore-like, matched against the slash-separated path of a
// file or directory relative to the watched root:
//
//   - each segment is a path.Match pattern ("*.tmp", "cache-?", "[ab]*");
//     "**" as a whole segment matches zero or more segments;
//   - a pattern without a "/" matches one segment at any depth: "node_modules"
//     ignores every file or directory of that name and everything under it,
//     "*.log" every .log file anywhere;
//   - a pattern with a "/" is anchored at the root: "build/out" ignores that
//     one path, "**/*.log" a .log file at any depth, "/dist" only the dist at
//     the root (a leading "/" or "./" just anchors);
//   - a path is ignored when it or one of its parents under the root matches,
//     so an ignored directory is not watched at all (which keeps large trees
//     such as node_modules from using up the watch limit);
//   - a trailing "/" is dropped: "cache/" is "cache".
type pattern struct {
	raw  string
	segs []string
	// anywhere: one segment, matched against every segment of the path.
	anywhere bool
}

func compilePatterns(globs []string) ([]pattern, error) {
	out := make([]pattern, 0, len(globs))
	for _, g := range globs {
		s := strings.TrimSuffix(g, "/")
		anchored := false
		for {
			switch {
			case strings.HasPrefix(s, "./"):
				s, anchored = s[2:], true
				continue
			case strings.HasPrefix(s, "/"):
				s, anchored = s[1:], true
				continue
			}
			break
		}
		if s == "" || s == "." {
			return nil, fmt.Errorf("cannot use ignore pattern %q: it names no path", g)
		}
		segs := strings.Split(s, "/")
		for _, seg := range segs {
			if seg == "" {
				return nil, fmt.Errorf("cannot use ignore pattern %q: empty path segment", g)
			}
			if _, err := path.Match(seg, ""); err != nil {
				return nil, fmt.Errorf("cannot use ignore pattern %q: %w", g, err)
			}
		}
		out = append(out, pattern{raw: g, segs: segs, anywhere: len(segs) == 1 && !anchored})
	}
	return out, nil
}

// ignored reports whether rel, a path relative to the watched root in the
// OS's form, is ignored by one of pats.
func ignored(pats []pattern, rel string) bool {
	if rel == "." || rel == "" || len(pats) == 0 {
		return false
	}
	segs := strings.Split(filepath.ToSlash(rel), "/")
	for _, p := range pats {
		if p.match(segs) {
			return true
		}
	}
	return false
}

func (p pattern) match(segs []string) bool {
	if p.anywhere {
		for _, s := range segs {
			if ok, _ := path.Match(p.segs[0], s); ok {
				return true
			}
		}
		return false
	}
	// The path or one of its parents.
	for k := 1; k <= len(segs); k++ {
		if matchSegs(p.segs, segs[:k]) {
			return true
		}
	}
	return false
}

// matchSegs matches a whole path against a whole pattern, "**" standing for
// any number of segments.
func matchSegs(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if matchSegs(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}
