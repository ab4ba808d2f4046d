package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Manager is the other side of the protocol: the service manager (systemd,
// or anything that speaks sd_notify) that runs clusterrun itself, reached
// through the NOTIFY_SOCKET clusterrun was started with.
type Manager struct {
	addr *net.UnixAddr
	// Watchdog is how often the manager expects WATCHDOG=1 (WATCHDOG_USEC),
	// 0 when it watches nothing, or watches another process (WATCHDOG_PID).
	Watchdog time.Duration
	// ExecPID is the pid the manager started (SYSTEMD_EXEC_PID), 0 if it
	// did not say.
	ExecPID int
}

// ownVars describe clusterrun's own supervision. They are read once and
// removed from the process environment, so that no child inherits them:
// an instance gets a NOTIFY_SOCKET (and WATCHDOG_USEC) of its own, and a
// WATCHDOG_PID naming clusterrun would make libsystemd in an instance turn
// its own watchdog off.
var ownVars = []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}

// FromEnv reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, unsets them,
// and returns the manager they name, or nil when clusterrun was not started
// by one. A value it cannot use is an error (the manager is still returned
// when only the watchdog is wrong, so that READY=1 is still sent).
func FromEnv() (*Manager, error) {
	vals := map[string]string{"SYSTEMD_EXEC_PID": os.Getenv("SYSTEMD_EXEC_PID")}
	for _, k := range ownVars {
		vals[k] = os.Getenv(k)
		os.Unsetenv(k)
	}
	return parseEnv(vals, os.Getpid())
}

func parseEnv(vals map[string]string, pid int) (*Manager, error) {
	path := vals["NOTIFY_SOCKET"]
	if path == "" {
		return nil, nil
	}
	// "@name" is an abstract socket; Go's unix addresses take the "@" as
	// the leading NUL. Anything else must be an absolute path: a relative
	// one would be resolved against whatever directory clusterrun is in.
	if !strings.HasPrefix(path, "@") && !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("cannot use NOTIFY_SOCKET=%q: neither an absolute path nor an abstract socket (@name)", path)
	}
	if len(path) > 107 {
		return nil, fmt.Errorf("cannot use NOTIFY_SOCKET=%q: longer than a socket address can be", path)
	}
	m := &Manager{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
	if p, err := strconv.Atoi(vals["SYSTEMD_EXEC_PID"]); err == nil && p > 0 {
		m.ExecPID = p
	}
	usec := vals["WATCHDOG_USEC"]
	if usec == "" {
		return m, nil
	}
	n, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || n == 0 {
		return m, fmt.Errorf("ignoring WATCHDOG_USEC=%q: not a positive number of microseconds", usec)
	}
	if wp := vals["WATCHDOG_PID"]; wp != "" {
		p, err := strconv.Atoi(wp)
		if err != nil || p <= 0 {
			return m, fmt.Errorf("ignoring the watchdog: WATCHDOG_PID=%q is not a pid", wp)
		}
		if p != pid {
			// It watches another process (a wrapper that started us).
			return m, nil
		}
	}
	m.Watchdog = time.Duration(min(n, uint64(1<<62)/1000)) * time.Microsecond
	return m, nil
}

// sendTimeout bounds how long a send may wait for a manager whose socket
// queue is full. The sender is the runner's loop; a manager that reads
// nothing for that long has bigger problems than one lost line.
const sendTimeout = 2 * time.Second

// Send sends one datagram of KEY=VALUE assignments, one per line, in the
// order given (pairs: key, value, key, value, …). Values must be one line;
// Line makes free text so.
func (m *Manager) Send(kv ...string) error {
	if len(kv)%2 != 0 {
		return errors.New("sdnotify: Send needs key, value pairs")
	}
	var b strings.Builder
	for i := 0; i < len(kv); i += 2 {
		b.WriteString(kv[i])
		b.WriteByte('=')
		b.WriteString(kv[i+1])
		b.WriteByte('\n')
	}
	// A socket per message, as libsystemd's sd_notify does: nothing stays
	// connected to a socket file the manager may have replaced since (a
	// daemon-reexec).
	c, err := net.DialUnix("unixgram", nil, m.addr)
	if err != nil {
		return fmt.Errorf("cannot reach the service manager at %s: %w", m.addr.Name, err)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(sendTimeout))
	if _, err := c.Write([]byte(b.String())); err != nil {
		return fmt.Errorf("cannot notify the service manager at %s: %w", m.addr.Name, err)
	}
	return nil
}

// Line makes s a single-line value: the protocol separates assignments by
// newlines, so a newline in STATUS= text would start a new assignment (a
// hostile app name could otherwise write READY=1).
func Line(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == 0 {
			return ' '
		}
		return r
	}, s)
}

// Monotonic is CLOCK_MONOTONIC in microseconds, for MONOTONIC_USEC=:
// systemd's Type=notify-reload takes a RELOADING=1 as the answer to its
// reload signal only when it was made after the signal was sent.
func Monotonic() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "0"
	}
	return strconv.FormatInt(ts.Sec*1e6+int64(ts.Nsec)/1e3, 10)
}

// Usec is d in whole microseconds, as the protocol's *_USEC values are.
func Usec(d time.Duration) string {
	return strconv.FormatInt(max(d.Microseconds(), 0), 10)
}
