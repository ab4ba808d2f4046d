package watch

import (
	"errors"
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
	segs []string
	// anywhere: one segment, matched against every segment of the path.
	anywhere bool
}

// CheckPattern reports whether g is an ignore pattern Watch accepts, with
// the checks it makes when it starts: a valid glob in each segment, no empty
// segment ("a//b"), and a path left after the anchoring "/" and "./" prefixes
// and the trailing "/" are dropped (so not "/", "./" or "."). A glob error
// wraps path.ErrBadPattern. The error does not name the pattern; the caller
// says which one it was.
func CheckPattern(g string) error {
	_, _, err := parsePattern(g)
	return err
}

// parsePattern splits g into its segments and reports whether it is
// anchored at the root.
func parsePattern(g string) (segs []string, anchored bool, err error) {
	s := strings.TrimSuffix(g, "/")
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
		return nil, false, errors.New("it names no path")
	}
	segs = strings.Split(s, "/")
	for _, seg := range segs {
		if seg == "" {
			return nil, false, errors.New("empty path segment")
		}
		if _, err := path.Match(seg, ""); err != nil {
			return nil, false, err
		}
	}
	return segs, anchored, nil
}

func compilePatterns(globs []string) ([]pattern, error) {
	out := make([]pattern, 0, len(globs))
	for _, g := range globs {
		segs, anchored, err := parsePattern(g)
		if err != nil {
			return nil, fmt.Errorf("cannot use ignore pattern %q: %w", g, err)
		}
		out = append(out, pattern{segs: segs, anywhere: len(segs) == 1 && !anchored})
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
