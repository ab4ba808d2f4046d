package hclconfig

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseFormation(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]int
		wantErr string
	}{
		{in: "web=4,worker=2", want: map[string]int{"web": 4, "worker": 2}},
		{in: "web=0", want: map[string]int{"web": 0}},
		{in: " web = 4 , worker=2 ", want: map[string]int{"web": 4, "worker": 2}},
		{in: "all=2,web=4", want: map[string]int{"all": 2, "web": 4}},
		{in: "web=4096", want: map[string]int{"web": 4096}},
		{in: "my_app-2=1", want: map[string]int{"my_app-2": 1}},
		{in: "", wantErr: "it is empty"},
		{in: "  ", wantErr: "it is empty"},
		{in: "web=4,", wantErr: "empty item"},
		{in: "web", wantErr: `"web" has no "="`},
		{in: "web=4097", wantErr: `the count of web is "4097"`},
		{in: "web=-1", wantErr: `the count of web is "-1"`},
		{in: "web=+1", wantErr: `the count of web is "+1"`},
		{in: "web=1.5", wantErr: `the count of web is "1.5"`},
		{in: "web=", wantErr: `the count of web is ""`},
		{in: "web=99999999999999999999", wantErr: "not a whole number from 0 to 4096"},
		{in: "web.1=2", wantErr: `"web.1" is not an app name`},
		{in: "=2", wantErr: `"" is not an app name`},
		{in: "web=1,web=2", wantErr: "web is given twice"},
	}
	for _, tt := range tests {
		got, err := ParseFormation(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseFormation(%q) = %v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseFormation(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestWithFormation(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	cfg, _ := mustLoad(t, "testdata/valid/sockets.hcl")
	apps := func(c *Config) map[string]int {
		m := make(map[string]int)
		for _, a := range c.Apps {
			m[a.Name] = a.Instances
		}
		return m
	}
	listeners := func(c *Config) []string {
		var names []string
		for _, l := range c.Listeners {
			names = append(names, l.Name)
		}
		return names
	}

	got, err := cfg.WithFormation(map[string]int{"api": 4, "store": 2})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"api": 4, "cache": 1, "store": 2}; !reflect.DeepEqual(apps(got), want) {
		t.Errorf("apps = %v, want %v", apps(got), want)
	}
	if cfg.App("api").Instances != 2 || got.App("api") == cfg.App("api") {
		t.Errorf("WithFormation changed the original or shares its apps")
	}
	if got.App("api").Written.Instances != "2" {
		t.Errorf("Written.Instances = %q; it is what the file says, not the formation", got.App("api").Written.Instances)
	}

	got, err = cfg.WithFormation(map[string]int{"all": 3, "cache": 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"api": 3, "cache": 1, "store": 3}; !reflect.DeepEqual(apps(got), want) {
		t.Errorf("all=3,cache=1: apps = %v, want %v", apps(got), want)
	}

	// api is the only user of public, admin and metrics; dropping it drops
	// them, and keeps other-random (cache's) and nothing else.
	got, err = cfg.WithFormation(map[string]int{"api": 0})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"cache": 1, "store": 1}; !reflect.DeepEqual(apps(got), want) {
		t.Errorf("api=0: apps = %v, want %v", apps(got), want)
	}
	if want := []string{"other-random"}; !reflect.DeepEqual(listeners(got), want) {
		t.Errorf("api=0: listeners = %q, want %q", listeners(got), want)
	}
	if len(cfg.Listeners) != 4 {
		t.Errorf("the original lost listeners: %q", listeners(cfg))
	}

	for _, tt := range []struct {
		f    map[string]int
		want string
	}{
		{map[string]int{"apii": 2}, `has no app "apii"; did you mean "api"? (its apps: "api", "cache", "store")`},
		{map[string]int{"x": 1, "y": 1}, `has no app "x" or "y"`},
		{map[string]int{"cache": 0}, "cannot run api without cache, which it depends on"},
		{map[string]int{"all": 0}, "leaves no app"},
	} {
		if _, err := cfg.WithFormation(tt.f); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("WithFormation(%v) = %v, want an error containing %q", tt.f, err, tt.want)
		}
	}
}

func TestWithFormationProbes(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	cfg, _ := mustLoad(t, "testdata/valid/probes.hcl")
	// backend probes env PORT 4000 with tcp: instances would share it.
	if _, err := cfg.WithFormation(map[string]int{"backend": 2}); err == nil || !strings.Contains(err.Error(), `ready check "tcp" probes the PORT in its env`) {
		t.Errorf("backend=2: err = %v", err)
	}
	if _, err := cfg.WithFormation(map[string]int{"slow": 3}); err != nil {
		t.Errorf("slow=3: %v", err)
	}
	// Behind a proxy listener every instance has its own port.
	proxy, _ := mustLoad(t, "testdata/valid/proxy.hcl")
	if got, err := proxy.WithFormation(map[string]int{"web": 8}); err != nil || got.App("web").Instances != 8 {
		t.Errorf("proxied web=8: %v", err)
	}
}

func TestWithFormationProcfile(t *testing.T) {
	fixedEnviron(t, testEnviron...)
	cfg, _ := mustLoad(t, "testdata/procfile/valid/Procfile")
	got, err := cfg.WithFormation(map[string]int{"web": 4, "worker": 2, "clock": 0})
	if err != nil {
		t.Fatal(err)
	}
	if got.App("web").Instances != 4 || got.App("worker").Instances != 2 || got.App("clock") != nil || got.App("release").Instances != 1 {
		t.Errorf("apps = %+v", got.Apps)
	}
	// The web listener goes with web.
	got, err = cfg.WithFormation(map[string]int{"web": 0})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Listeners) != 0 || got.App("web") != nil {
		t.Errorf("web=0: listeners %v, web %v", got.Listeners, got.App("web"))
	}
	if abs, _ := filepath.Abs("testdata/procfile/valid/Procfile"); got.Path != abs {
		t.Errorf("Path = %q", got.Path)
	}
}
