package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version, when set at build time (-ldflags "-X
// github.com/clusterrun/clusterrun/cli.version=v1.2.3"), replaces the
// module version of the build information; the commit still comes from it.
var version string

// modulePath is what the version says when the binary carries no build
// information (a toolchain that does not write it).
const modulePath = "github.com/clusterrun/clusterrun"

// build is what the binary knows about how it was built.
type build struct {
	Module, Version string
	// Revision, Time and Modified are vcs.revision, vcs.time and
	// vcs.modified; Revision is "" when the build was not stamped
	// (-buildvcs=false, or not built inside a git checkout).
	Revision, Time string
	Modified       bool
	Go             string
}

// readBuild reads the running binary's build information. Built inside a
// git checkout (go build, go install or go run), it has the commit and a
// module version: the tag, or a pseudo-version naming the commit. Built with
// -buildvcs=false, or outside a checkout, or as a test binary, it has no
// commit and the version "(devel)"; "go install module@v1.2.3" has the
// version and no commit.
func readBuild() build {
	b := build{Module: modulePath, Version: "(devel)", Go: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		if info.Main.Path != "" {
			b.Module = info.Main.Path
		}
		if info.Main.Version != "" {
			b.Version = info.Main.Version
		}
		if info.GoVersion != "" {
			b.Go = info.GoVersion
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.time":
				b.Time = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if version != "" {
		b.Version = version
	}
	return b
}

// String is the full text of `clusterrun version`.
func (b build) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "clusterrun %s\n", b.Version)
	fmt.Fprintf(&s, "  module  %s\n", b.Module)
	switch {
	case b.Revision == "":
		s.WriteString("  commit  unknown: built without VCS information (-buildvcs=false, or outside a git checkout)\n")
	default:
		fmt.Fprintf(&s, "  commit  %s", b.Revision)
		if b.Time != "" {
			fmt.Fprintf(&s, " (%s)", b.Time)
		}
		if b.Modified {
			s.WriteString(", with uncommitted changes")
		}
		s.WriteString("\n")
	}
	fmt.Fprintf(&s, "  go      %s %s/%s\n", b.Go, runtime.GOOS, runtime.GOARCH)
	return s.String()
}

// short is the one-word version up prints when it starts: the version,
// and the short commit when the version does not already name it.
func (b build) short() string {
	rev := b.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" || strings.Contains(b.Version, rev) {
		return b.Version
	}
	if b.Modified {
		rev += "+modified"
	}
	return b.Version + " " + rev
}

func versionText() string  { return readBuild().String() }
func shortVersion() string { return readBuild().short() }

func newVersionCmd(*cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and commit this binary was built from",
		Long: `Print the module version, the VCS commit (with its time, and whether the
checkout had uncommitted changes) and the Go version this binary was built
from, as the build recorded them (runtime/debug.ReadBuildInfo). Built in a
git checkout (go build, go install, go run), it has the commit, and a
version that is the tag or a pseudo-version naming the commit. Built with
-buildvcs=false or outside a checkout, the version is "(devel)" and the
commit unknown, and this says so. "clusterrun --version" prints the same.`,
		Example: `  clusterrun version
  clusterrun --version`,
		GroupID: groupOther,
		Args:    argCount(0, 0, ""),
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprint(cmd.OutOrStdout(), versionText())
		},
	}
}
