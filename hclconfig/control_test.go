package hclconfig

import (
	"strings"
	"testing"
)

// The control block: an address is served only with a token file, token
// paths are relative to the file, and a unix address is refused.
func TestControlBlock(t *testing.T) {
	const app = "\napp \"web\" {\n  command = [\"true\"]\n}\n"
	cfg, _, diags := Parse("/srv/site/cluster.hcl", []byte(`control {
  address              = "127.0.0.1:7070"
  token_file           = "secrets/full.token"
  read_only_token_file = "/etc/ro.token"
}`+app))
	if diags.HasErrors() {
		t.Fatalf("a valid control block: %v", diags)
	}
	want := Control{Address: "127.0.0.1:7070", TokenFile: "/srv/site/secrets/full.token", ReadOnlyTokenFile: "/etc/ro.token"}
	if c := cfg.Control; c == nil || c.Address != want.Address || c.TokenFile != want.TokenFile || c.ReadOnlyTokenFile != want.ReadOnlyTokenFile {
		t.Errorf("control block decoded as %+v, want %+v", cfg.Control, want)
	}
	for text, says := range map[string]string{
		`control { address = "127.0.0.1:7070" }`: "Control address without a token",
		`control {
 address = "unix:/tmp/x.sock"
 token_file = "t"
}`: "already serves the API on its own private unix socket",
		`control {
 address = "localhost"
 token_file = "t"
}`: "Invalid control address",
		`control {
 addres = "127.0.0.1:7070"
 token_file = "t"
}`: "Did you mean \"address\"",
		"control { token_file = \"t\" }\ncontrol { token_file = \"t\" }": "Duplicate control block",
	} {
		_, _, diags := Parse("/srv/cluster.hcl", []byte(text+app))
		if !diags.HasErrors() || !strings.Contains(diags.Error(), says) {
			t.Errorf("%s: %v, want an error saying %q", text, diags, says)
		}
	}
}
