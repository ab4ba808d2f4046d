package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for i, tc := range []struct {
		in   string
		want Message
	}{
		{"READY=1", Message{Ready: true}},
		{"READY=1\nSTATUS=serving 4 conns\n", Message{Ready: true, Status: "serving 4 conns", HasStatus: true}},
		{"STOPPING=1", Message{Stopping: true}},
		{"RELOADING=1\nMONOTONIC_USEC=123", Message{Reloading: true, Other: map[string]string{"MONOTONIC_USEC": "123"}}},
		{"WATCHDOG=1", Message{Watchdog: true}},
		{"READY=0", Message{}},
		{"MAINPID=4242", Message{MainPID: 4242}},
		{"MAINPID=-1", Message{}},
		{"STATUS=", Message{HasStatus: true}},
		{"STATUS=a=b", Message{Status: "a=b", HasStatus: true}},
		{"garbage\n=1\n\nREADY=1", Message{Ready: true}},
		{"", Message{}},
	} {
		if got := Parse([]byte(tc.in)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("#%d Parse(%q) = %+v, want %+v", i, tc.in, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"READY=1", "STATUS=x\nSTOPPING=1", "MAINPID=12", "\n\n=", "A=B=C"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := Parse(b)
		if m.MainPID < 0 {
			t.Fatalf("negative MAINPID from %q", b)
		}
	})
}

func TestSocketDeliversMessages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.sock")
	s, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan Message, 4)
	served := make(chan struct{})
	go func() {
		s.Serve(func(m Message) { got <- m })
		close(served)
	}()
	c, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, msg := range []string{"READY=1", "STATUS=warming up", "STOPPING=1"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	want := []Message{{Ready: true}, {Status: "warming up", HasStatus: true}, {Stopping: true}}
	for i, w := range want {
		select {
		case m := <-got:
			if !reflect.DeepEqual(m, w) {
				t.Errorf("message %d = %+v, want %+v", i, m, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d not delivered within 10s", i)
		}
	}
	s.Close()
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s of Close")
	}
	if _, err := net.Dial("unixgram", path); err == nil {
		t.Error("socket file still accepts datagrams after Close")
	}
}

func TestParseEnv(t *testing.T) {
	const pid = 4242
	for _, tc := range []struct {
		vals     map[string]string
		nilMgr   bool
		watchdog time.Duration
		execPID  int
		err      string
	}{
		{vals: map[string]string{}, nilMgr: true},
		{vals: map[string]string{"NOTIFY_SOCKET": "/run/systemd/notify"}},
		{vals: map[string]string{"NOTIFY_SOCKET": "@abstract/notify", "SYSTEMD_EXEC_PID": "17"}, execPID: 17},
		{vals: map[string]string{"NOTIFY_SOCKET": "relative/notify"}, nilMgr: true, err: "neither an absolute path"},
		{vals: map[string]string{"NOTIFY_SOCKET": "/" + strings.Repeat("x", 200)}, nilMgr: true, err: "longer than"},
		{vals: map[string]string{"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "30000000"}, watchdog: 30 * time.Second},
		{vals: map[string]string{"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, watchdog: 30 * time.Second},
		// The watchdog of another process (a wrapper that started us).
		{vals: map[string]string{"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}},
		{vals: map[string]string{"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "0"}, err: "not a positive number"},
		{vals: map[string]string{"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "-5"}, err: "not a positive number"},
		{vals: map[string]string{"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "5", "WATCHDOG_PID": "x"}, err: "not a pid"},
		{vals: map[string]string{"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "99999999999999999999"}, err: "not a positive number"},
	} {
		m, err := parseEnv(tc.vals, pid)
		if (m == nil) != tc.nilMgr {
			t.Errorf("%v: manager %v", tc.vals, m)
		}
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%v: error %v, want %q", tc.vals, err, tc.err)
		}
		if m != nil && (m.Watchdog != tc.watchdog || m.ExecPID != tc.execPID) {
			t.Errorf("%v: watchdog %v exec pid %d, want %v %d", tc.vals, m.Watchdog, m.ExecPID, tc.watchdog, tc.execPID)
		}
	}
}

func TestFromEnvUnsetsWhatDescribesTheManager(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/run/x")
	t.Setenv("WATCHDOG_USEC", "1000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	m, err := FromEnv()
	if err != nil || m == nil || m.Watchdog != time.Second {
		t.Fatalf("FromEnv: %+v %v", m, err)
	}
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		if v, ok := os.LookupEnv(k); ok {
			t.Errorf("%s=%s is still in the environment", k, v)
		}
	}
}

// Send reaches a socket file and an abstract socket, one datagram per
// message, and Line keeps a value from adding assignments.
func TestSendToFileAndAbstractSockets(t *testing.T) {
	dir, err := os.MkdirTemp("", "sdn-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for _, addr := range []string{filepath.Join(dir, "n"), fmt.Sprintf("@sdnotify-test-%d", os.Getpid())} {
		s, err := Listen(addr)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan Message, 1)
		go s.Serve(func(m Message) { got <- m })
		m, err := parseEnv(map[string]string{"NOTIFY_SOCKET": addr}, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Send("READY=1"); err == nil {
			t.Errorf("Send accepted an odd number of arguments")
		}
		if err := m.Send("READY", "1", "STATUS", Line("web\nREADY=1\r\x00up")); err != nil {
			t.Fatal(err)
		}
		select {
		case msg := <-got:
			want := Message{Ready: true, Status: "web READY=1  up", HasStatus: true}
			if !reflect.DeepEqual(msg, want) {
				t.Errorf("%s: got %+v, want %+v", addr, msg, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: nothing received within 10s", addr)
		}
		s.Close()
	}
}

func TestMonotonicAndUsec(t *testing.T) {
	a, _ := strconv.ParseInt(Monotonic(), 10, 64)
	b, _ := strconv.ParseInt(Monotonic(), 10, 64)
	if a <= 0 || b < a {
		t.Errorf("Monotonic: %d then %d", a, b)
	}
	if Usec(1500*time.Millisecond) != "1500000" || Usec(-time.Second) != "0" {
		t.Errorf("Usec: %s %s", Usec(1500*time.Millisecond), Usec(-time.Second))
	}
}
