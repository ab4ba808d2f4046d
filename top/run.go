package top

import (
	"context"
	"encoding/json"
	"io"
	"strconv"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clusterrun/clusterrun/control"
)

// Run shows the runner that c talks to (target names it in the header)
// until the user quits; it restores the terminal on every way out.
func Run(ctx context.Context, c *control.Client, target string, in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := &feed{c: c, ctx: ctx}
	p := tea.NewProgram(newModel(target, f), tea.WithAltScreen(), tea.WithInput(in), tea.WithOutput(out), tea.WithContext(ctx))
	f.send = p.Send
	go f.events()
	_, err := p.Run()
	if err == tea.ErrProgramKilled && ctx.Err() != nil {
		return nil
	}
	return err
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func itoa(n int) string { return strconv.Itoa(n) }
