// Package top is `clusterrun top`: a full-screen live view of a running
// runner, a client of its HTTP API (package control).
//
// The table, the trends and the status line follow the runner's event
// stream (/v1/events): an event is shown at once and triggers a read of
// the runner's own status (one loop round trip, no sampling), so the table
// is the runner's model, never a copy of its state machine kept here. CPU
// and memory are samples: they come from a status read with sampling once
// a second, which also feeds the sparklines. The log pane follows
// /v1/logs for the selected app or instance.
//
// It is built on bubbletea with lipgloss. The Elm architecture keeps every
// piece of state in one value changed by one Update function on one
// goroutine (the house rule for state), so the model is tested without a
// terminal; the renderer repaints only the lines that changed, at a capped
// frame rate, in the alternate screen (no flicker, no scrollback damage),
// and restores the terminal on every way out, a panic included. tview
// would give ready-made widgets, but keeps state in the widgets and calls
// back from its own goroutine, which is what the rest of clusterrun avoids.
package top
