package hclconfig

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string // substring of the error; "" = no error
	}{
		{"250ms", 250 * time.Millisecond, ""},
		{"1m30s", 90 * time.Second, ""},
		{"0s", 0, ""},
		{"0", 0, ""},
		{"1.5h", 90 * time.Minute, ""},
		{"-1s", -time.Second, ""}, // the caller rejects negatives
		{"", 0, "empty"},
		{"5", 0, "has no unit"},
		{"1.5", 0, "has no unit"},
		{"1d", 0, `write "24h"`},
		{"30 seconds", 0, "unknown unit"},
		{"soon", 0, "is not a duration"},
		{"99999999999h", 0, "too long"},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("parseDuration(%q): %v", tt.in, err)
		case tt.wantErr == "" && got != tt.want:
			t.Errorf("parseDuration(%q) = %v, want %v", tt.in, got, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("parseDuration(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1 << 20, true},
		{"512MiB", 512 << 20, true},
		{"1GiB", 1 << 30, true},
		{"1G", 1 << 30, true},
		{"1g", 1 << 30, true},
		{"100MB", 100e6, true},
		{"2KB", 2000, true},
		{"2K", 2048, true},
		{"1.5GiB", 3 << 29, true},
		{"512 MiB", 512 << 20, true},
		{"64Mi", 64 << 20, true},
		{"1TB", 1e12, true},
		{"0", 0, true},
		{"10B", 10, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"512 megs", 0, false},
		{"-1G", 0, false},
		{"1.2.3M", 0, false},
		{"1e3", 0, false},
		{"9999999999TiB", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in, network, address string
		wantErr              string
	}{
		{in: "0.0.0.0:8080", network: "tcp", address: "0.0.0.0:8080"},
		{in: ":8080", network: "tcp", address: ":8080"},
		{in: ":0", network: "tcp", address: ":0"},
		{in: "[::1]:8080", network: "tcp", address: "[::1]:8080"},
		{in: "[::]:80", network: "tcp", address: "[::]:80"},
		{in: "[fe80::1%eth0]:80", network: "tcp", address: "[fe80::1%eth0]:80"},
		{in: "localhost:3000", network: "tcp", address: "localhost:3000"},
		{in: "api.example.com:443", network: "tcp", address: "api.example.com:443"},
		{in: "unix:/run/app.sock", network: "unix", address: "/run/app.sock"},
		{in: "unix:app.sock", network: "unix", address: "/etc/cr/app.sock"},
		{in: "unix:../run//app.sock", network: "unix", address: "/etc/run/app.sock"},
		{in: "0.0.0.0", wantErr: "port is missing"},
		{in: "8080", wantErr: `write ":8080"`},
		{in: "localhost:", wantErr: "has no port"},
		{in: ":70000", wantErr: "0 to 65535"},
		{in: ":-1", wantErr: "0 to 65535"},
		{in: ":http", wantErr: "not a port number"},
		{in: "::1:8080", wantErr: "brackets"},
		{in: "[::1:8080", wantErr: "not closed"},
		{in: "[::1]8080", wantErr: "port is missing"},
		{in: "[1.2.3.4]:80", wantErr: "not an IPv6 address"},
		{in: "*:80", wantErr: `leave the host out`},
		{in: "http://localhost:80", wantErr: "scheme"},
		{in: "300.1.1.1:80", wantErr: "neither an IP address nor a host name"},
		{in: "bad_host:80", wantErr: "neither an IP address nor a host name"},
		{in: "systemd:http", network: "systemd", address: "http"},
		{in: "systemd:web.socket-1", network: "systemd", address: "web.socket-1"},
		{in: "systemd:", wantErr: "FileDescriptorName"},
		{in: "systemd:a:b", wantErr: "FileDescriptorName"},
		{in: "systemd:a b", wantErr: "FileDescriptorName"},
		{in: "systemd:caf\u00e9", wantErr: "FileDescriptorName"},
		{in: "systemd:" + strings.Repeat("a", 256), wantErr: "FileDescriptorName"},
		{in: "unix:", wantErr: "empty"},
		{in: "unix:@abstract", wantErr: "abstract"},
		{in: "unix:/" + strings.Repeat("a", 107), wantErr: "at most 107 bytes"},
		{in: "unix:" + strings.Repeat("a", 100), wantErr: "at most 107 bytes"}, // long once resolved
	}
	for _, tt := range tests {
		network, address, err := parseAddress(tt.in, "/etc/cr")
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseAddress(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || network != tt.network || address != tt.address {
			t.Errorf("parseAddress(%q) = %q, %q, %v; want %q, %q", tt.in, network, address, err, tt.network, tt.address)
		}
	}
	// 107 bytes is the longest path that fits sun_path with its NUL.
	if _, _, err := parseAddress("unix:/"+strings.Repeat("a", 106), "/"); err != nil {
		t.Errorf("a 107-byte path: %v", err)
	}
}

func TestValidName(t *testing.T) {
	for _, name := range []string{"web", "Web2", "0", "api-v2", "worker_1", "a"} {
		if !ValidName(name) {
			t.Errorf("ValidName(%q) = false", name)
		}
	}
	for _, name := range []string{"", "-web", "_web", "web.1", "a:b", "a b", "ünï", "web/1", "web\n"} {
		if ValidName(name) {
			t.Errorf("ValidName(%q) = true", name)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	tests := []struct{ given, want string }{
		{"reuse_port", "reuseport"},
		{"on-fail", "on-failure"},
		{"MAX", "max"},
		{"notfy", "notify"},
		{"lots", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got := didYouMean(tt.given, "shared", "reuseport", "proxy", "on-failure", "max", "notify")
		want := ""
		if tt.want != "" {
			want = ` Did you mean "` + tt.want + `"?`
		}
		if got != want {
			t.Errorf("didYouMean(%q) = %q, want %q", tt.given, got, want)
		}
	}
}
