package proc

import (
	"fmt"
	"strings"
)

// Holder is a process that holds a socket.
type Holder struct {
	PID int
	// Command is its command line, cut to a readable length.
	Command string
}

// PortHolders returns the processes that listen on TCP port port, as far
// as this user may see them; hidden reports a listening socket on the port
// whose process could not be found (another user's: /proc hides their
// descriptors). Both empty: nothing listens there that /proc shows (a
// socket bound and not listening, say). For messages only: it reads all
// of /proc.
func PortHolders(port int) (holders []Holder, hidden bool) { return portHolders(port) }

// InUseBy says who holds port for an "address already in use" message:
// "; port 8080 is held by pid 1234 (python3 -m http.server 8080)", or ""
// when nothing can be said.
func InUseBy(port int) string {
	holders, hidden := PortHolders(port)
	var who []string
	for _, h := range holders {
		who = append(who, fmt.Sprintf("pid %d (%s)", h.PID, h.Command))
	}
	switch {
	case len(who) > 0:
		return fmt.Sprintf("; port %d is held by %s", port, strings.Join(who, ", "))
	case hidden:
		return fmt.Sprintf("; port %d is held by a process of another user (sudo ss -ltnp 'sport = :%d' names it)", port, port)
	}
	return ""
}
