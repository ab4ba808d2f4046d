package export

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/clusterrun/clusterrun/hclconfig"
)

func TestEnvParts(t *testing.T) {
	for _, tc := range []struct {
		source string
		want   []part // nil: not text and references
	}{
		{`env.HOME`, []part{{ref: "HOME"}}},
		{`env["MY_VAR"]`, []part{{ref: "MY_VAR"}}},
		{`"${env.HOME}"`, []part{{ref: "HOME"}}},
		{`"${env.HOME}/data:${env.USER}"`, []part{{ref: "HOME"}, {text: "/data:"}, {ref: "USER"}}},
		{`lookup(env, "X", "d")`, nil},
		{`"${upper(env.X)}"`, nil},
		{`"%{if env.X != ""}a%{endif}"`, nil},
		{`other.X`, nil},
		{`merge({A = "1"}, {B = env.B})`, nil},
	} {
		v := newEnvVar(hclconfig.WrittenVar{Name: "V", Source: tc.source}, false)
		if !reflect.DeepEqual(v.parts, tc.want) {
			t.Errorf("%s: parts %+v, want %+v", tc.source, v.parts, tc.want)
		}
	}
	// A literal is its value, whatever its source looks like.
	v := newEnvVar(hclconfig.WrittenVar{Name: "V", Value: "x", Source: `"x"`, Literal: true}, false)
	if !reflect.DeepEqual(v.parts, []part{{text: "x"}}) || v.hasRefs() {
		t.Errorf("literal: %+v", v.parts)
	}
}

func TestEscapes(t *testing.T) {
	for _, tc := range []struct{ fn, in, want, bad string }{
		// systemd ExecStart=: specifiers and variables, then quoting.
		{"exec", "plain", "plain", ""},
		{"exec", "100% $HOME ${X}", `"100%% $$HOME $${X}"`, ""},
		{"exec", `say "hi"\n`, `"say \"hi\"\\n"`, ""},
		{"exec", "a;b", `"a;b"`, ""},
		{"exec", "", `""`, ""},
		{"exec", "tab\there\x01", `"tab\there\x01"`, ""},
		{"exec", "é", `"é"`, ""},
		{"exec", "a\x00b", "", "NUL"},
		// Environment=
		{"env", "a b\n", `"X=a b\n"`, ""},
		{"env", "50%", `X=50%%`, ""},
		{"env", "a\rb", "", "carriage return"},
		// Paths and plain strings: taken as they are.
		{"path", "/srv/a b/%n", "/srv/a b/%%n", ""},
		{"path", "/srv/a\nExecStartPre=/bin/true", "", "newline"},
		{"path", "/srv/x ", "", "whitespace"},
		{"path", `/srv/x\`, "", "backslash"},
		{"path", "srv", "", "absolute"},
		{"account", "nogroup\nAmbientCapabilities=CAP_SYS_ADMIN", "", "newline"},
		{"account", "a:b", "", "user or group name"},
		{"account", "www-data", "www-data", ""},
		// Kubernetes: only "$(" and "$$" would be read.
		{"k8s", "$(date) $HOME $$ $", "$$(date) $HOME $$$ $", ""},
		{"k8s", "$$(x)", "$$$$(x)", ""},
		{"k8s", "price: 5$", "price: 5$", ""},
		// sh
		{"sh", "/srv/app", "/srv/app", ""},
		{"sh", "it's here", `'it'\''s here'`, ""},
		{"sh", "", "''", ""},
		// YAML
		{"yaml", "a\u0085b", `"a\Nb"`, ""},
		{"yaml", "a\u2028b\u2029", `"a\Lb\P"`, ""},
		{"yaml", "\ufeffx\x7f", `"\uFEFFx\x7F"`, ""},
		{"yaml", "\xff", "", "UTF-8"},
		// Nomad
		{"nomad", "echo ${HOME}", "", "$HOME"},
		{"nomad", "echo $HOME ${X:-1}", "echo $HOME ${X:-1}", ""},
	} {
		var got, bad string
		switch tc.fn {
		case "exec":
			got, bad = sdExecWord(tc.in, false)
		case "env":
			got, bad = sdEnvAssignment("X", tc.in)
		case "path":
			got, bad = sdPath(tc.in)
		case "account":
			got, bad = sdAccount(tc.in)
		case "k8s":
			got = k8sEscape(tc.in)
		case "sh":
			got = shellQuote(tc.in)
		case "yaml":
			got, bad = yamlString(tc.in)
		case "nomad":
			got, bad = tc.in, nomadText(tc.in)
		}
		if tc.bad != "" {
			if !strings.Contains(bad, tc.bad) {
				t.Errorf("%s(%q) = %q, %q; want a refusal saying %q", tc.fn, tc.in, got, bad, tc.bad)
			}
			continue
		}
		if got != tc.want || bad != "" {
			t.Errorf("%s(%q) = %s, %q; want %s", tc.fn, tc.in, got, bad, tc.want)
		}
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{"web": "web", "Admin_UI": "admin-ui", "-x-": "x", "__": "app", "a.b": "a-b"} {
		if got := dnsLabel(in); got != want {
			t.Errorf("dnsLabel(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"http": "http", "metrics_port_long_name": "metrics-port-lo", "8080": "p-8080", "a__b": "a-b"} {
		if got := portName(in); got != want {
			t.Errorf("portName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"http": "http", "my-port": "my_port"} {
		if got := nomadLabel(in); got != want {
			t.Errorf("nomadLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnits(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0", 100 * time.Millisecond: "100ms", 10 * time.Second: "10s", 90 * time.Second: "1min 30s",
		time.Hour + time.Second: "1h 1s", 1500 * time.Microsecond: "1500us",
	} {
		if got := sdDuration(d); got != want {
			t.Errorf("sdDuration(%s) = %q, want %q", d, got, want)
		}
	}
	units := []string{"", "Ki", "Mi", "Gi"}
	for n, want := range map[int64]string{512 << 20: "512Mi", 1 << 30: "1Gi", 1536 << 20: "1536Mi", 1000: "1000", 4096: "4Ki"} {
		if got := sizeString(n, units); got != want {
			t.Errorf("sizeString(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]int{0: 1, 100 * time.Millisecond: 1, 2 * time.Second: 2, 2500 * time.Millisecond: 3} {
		if got := seconds(d, 1); got != want {
			t.Errorf("seconds(%s) = %d, want %d", d, got, want)
		}
	}
}

func TestYAMLScalar(t *testing.T) {
	for in, want := range map[string]string{
		"web": "web", "/bin/sleep": "/bin/sleep", "1000": `"1000"`, "true": `"true"`, "Yes": `"Yes"`,
		"": `""`, "a: b": `"a: b"`, "-x": `"-x"`, "$(HOME)/x": `"$(HOME)/x"`, "app.kubernetes.io/name": "app.kubernetes.io/name",
		"say \"hi\"\n": `"say \"hi\"\n"`, "<&>": `"<&>"`,
	} {
		if got, _ := yamlString(in); got != want {
			t.Errorf("yamlString(%q) = %s, want %s", in, got, want)
		}
	}
	doc, _ := yamlDoc(obj{{"a", 1}, {"b", obj{{"c", list{"x", obj{{"d", true}, {"e", list{}}}}}}}, {"f", obj{}}})
	const want = "a: 1\nb:\n  c:\n  - x\n  - d: true\n    e: []\nf: {}\n"
	if doc != want {
		t.Errorf("yamlDoc =\n%s\nwant\n%s", doc, want)
	}
}

func TestMergedWarnings(t *testing.T) {
	in := []Warning{
		{Pos: "f:1", Subject: `app "a"`, Attr: "x", Msg: "same"},
		{Pos: "f:2", Subject: `listener "l"`, Attr: "x", Msg: "same"},
		{Pos: "f:3", Subject: `app "b"`, Attr: "x", Msg: "same"},
		{Pos: "f:3", Subject: `app "b"`, Attr: "y", Msg: "other"},
		{Pos: "f:4", Subject: `app "c"`, Attr: "x", Msg: "same"},
	}
	got := merged(in)
	want := []Warning{
		{Pos: "f:1", Subject: `apps "a", "b", "c"`, Attr: "x", Msg: "same"},
		{Pos: "f:2", Subject: `listener "l"`, Attr: "x", Msg: "same"},
		{Pos: "f:3", Subject: `app "b"`, Attr: "y", Msg: "other"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged =\n%+v\nwant\n%+v", got, want)
	}
	if s := got[0].String(); s != `f:1: apps "a", "b", "c": x: same` {
		t.Errorf("String() = %q", s)
	}
}
