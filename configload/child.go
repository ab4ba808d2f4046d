package configload

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/clusterrun/clusterrun/hclconfig"
	"github.com/clusterrun/clusterrun/preflight"
	"github.com/hashicorp/hcl/v2"
)

// RunChild is the config reader's main: args are those after ChildArg. It
// writes the gob-encoded Result to stdout and returns the exit status.
func RunChild(args []string) int {
	// Whatever the parent had open and did not mark close-on-exec (a
	// socket inherited from systemd, say) is closed before anything else.
	closeInherited()
	if len(args) != 5 {
		fmt.Fprintln(os.Stderr, "clusterrun:", errUsage)
		return 2
	}
	width, err1 := strconv.ParseUint(args[1], 10, 32)
	memory, err2 := strconv.ParseInt(args[3], 10, 64)
	cpu, err3 := strconv.ParseInt(args[4], 10, 32)
	if err1 != nil || err2 != nil || err3 != nil || memory <= 0 || cpu <= 0 {
		fmt.Fprintln(os.Stderr, "clusterrun:", errUsage)
		return 2
	}
	if err := limitSelf(uint64(memory), uint64(cpu)); err != nil {
		fmt.Fprintf(os.Stderr, "clusterrun: config reader: cannot set its limits: %v\n", err)
		return 1
	}
	// Past the soft CPU limit the kernel sends SIGXCPU (and SIGKILL a
	// second later): say so with an exit status the parent knows.
	xcpu := make(chan os.Signal, 1)
	signal.Notify(xcpu, syscall.SIGXCPU)
	go func() {
		<-xcpu
		os.Exit(exitCPU)
	}()
	flags := args[2]
	res := read(args[0], strings.Contains(flags, "s"), uint(width), strings.Contains(flags, "c"), strings.Contains(flags, "e"))
	if err := gob.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintf(os.Stderr, "clusterrun: config reader: cannot hand the config back: %v\n", err)
		return 1
	}
	return 0
}

// read loads, checks and renders: what the child does between its limits
// and its output.
func read(path string, skipMachine bool, width uint, color, errorsOnly bool) Result {
	cfg, files, diags := hclconfig.LoadPartial(path)
	if cfg != nil && !skipMachine {
		diags = append(diags, preflight.Check(cfg)...)
	}
	hclconfig.SortDiagnostics(diags)
	var res Result
	var shown hcl.Diagnostics
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			res.Errors++
		} else {
			res.Warnings++
			if errorsOnly {
				continue
			}
		}
		shown = append(shown, d)
	}
	if len(shown) > 0 {
		var b bytes.Buffer
		hclconfig.WriteDiagnostics(&b, files, shown, width, color)
		res.Diagnostics = b.String()
	}
	if res.Errors == 0 {
		res.Config = cfg
	}
	return res
}
