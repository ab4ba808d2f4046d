package sdnotify

import (
	"net"
	"path/filepath"
	"reflect"
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
