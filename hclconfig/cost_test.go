package hclconfig

import (
	"fmt"
	"math/big"
	"strings"
	"testing"
)

// TestCostlyExpressions: each of these small files would make the
// evaluation build gigabytes (or hang); each must be refused, fast, and
// the ordinary uses of the same functions must still load.
func TestCostlyExpressions(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	fixedEnviron(t, "HOME=/home/tester", "BIG="+big, "NUM=1e99999999", "FMT=%0999999999d", "SMALL=abc", "PORT=8080")
	list := "[" + strings.Repeat(`"aaaaaaaaaa", `, 100) + "]"
	nested := strings.Repeat(`replace(`, 12) + `"aa"` + strings.Repeat(`, "a", "aaaaaaaaaa")`, 12)
	refused := []struct {
		name, expr, want string
	}{
		{"format width", `format("%0999999999d", 1)`, "Expression too costly"},
		{"format precision", `format("%.999999999f", 1)`, "Expression too costly"},
		{"format width from env", `format(env.FMT, 1)`, "Invalid function argument"},
		{"env value repeated", `"` + strings.Repeat("${env.BIG}", 100) + `"`, "Expression too costly"},
		{"nested replace", nested, "Expression too costly"},
		{"join of a long separator", `join(env.BIG, split("", env.BIG))`, "Expression too costly"},
		{"nested for", "length([for a in " + list + " : [for b in " + list + " : [for c in " + list + " : [for d in " + list + " : \"${a}${b}${c}${d}\"]]]])", "Expression too costly"},
		{"huge number from env", `"${env.NUM + 0}"`, "Expression too costly"},
		{"huge number from env, bare", `env.NUM * 1`, "Expression too costly"},
		{"huge number from a string", `tonumber("1e99999999")`, "Expression too costly"},
		{"huge number from a built string", `tonumber("${"1e"}${env.SMALL == "" ? "" : "99999999"}")`, "Expression too costly"},
		{"template for directive", `"%{ for a in ` + list + ` }%{ for b in ` + list + ` }%{ for c in ` + list + ` }%{ for d in ` + list + ` }${env.SMALL}%{ endfor }%{ endfor }%{ endfor }%{ endfor }"`, "Expression too costly"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			src := fmt.Sprintf("env = { X = %s }\napp \"a\" { command = [\"x\"] }\n", tt.expr)
			var summaries []string
			elapsed, alloc := measure(func() {
				cfg, _, diags := Parse("costly.hcl", []byte(src))
				if cfg != nil {
					t.Errorf("loaded: X = %.40q...", cfg.Env["X"])
				}
				for _, d := range diags {
					summaries = append(summaries, d.Summary)
				}
			})
			if len(summaries) == 0 || summaries[0] != tt.want {
				t.Errorf("diagnostics %q, want %q", summaries, tt.want)
			}
			if elapsed > hangBound || alloc > 64<<20 {
				t.Errorf("took %v and %d MB", elapsed, alloc>>20)
			}
		})
	}

	// The same functions, used as configs use them.
	fine := map[string]string{
		`format("%s-%03d", "build", 7)`:                   "build-007",
		`format("%-8s|", "ab")`:                           "ab      |",
		`replace("a-b-c", "-", "_")`:                      "a_b_c",
		`join(",", split(",", "a,b,c"))`:                  "a,b,c",
		`"${env.BIG}" == "" ? "" : "set"`:                 "set",
		`substr(env.BIG, 0, 2)`:                           "xx",
		`join("", [for s in ["a", "b"] : upper(s)])`:      "AB",
		`"%{ for s in ["a", "b"] }${s}%{ endfor }"`:       "ab",
		`substr("${env.BIG}${env.BIG}", 0, 1)`:            "x",
		`tonumber("${env.PORT}") + 1`:                     "8081",
		`"${env.PORT + 1}"`:                               "8081",
		`tonumber("1e3")`:                                 "1000",
		`1e300 * 1e300 > 0`:                               "true",
		`tostring(10 / 4)`:                                "2.5",
		`lookup(env, "MISSING", "default")`:               "default",
		`merge({ a = env.SMALL }, { b = "2" }).a`:         "abc",
		`[for k, v in { a = 1, b = 2 } : "${k}=${v}"][1]`: "b=2",
		`format(env.SMALL)`:                               "abc",
		`upper(substr(env.BIG, 0, 3))`:                    "XXX",
	}
	for expr, want := range fine {
		src := fmt.Sprintf("env = { X = %s }\napp \"a\" { command = [\"x\"] }\n", expr)
		cfg, files, diags := Parse("fine.hcl", []byte(src))
		if diags.HasErrors() {
			t.Errorf("%s:\n%s", expr, render(t, files, diags))
			continue
		}
		if got := cfg.Env["X"]; got != want {
			t.Errorf("%s = %q, want %q", expr, got, want)
		}
	}
}

func TestFormatVerbs(t *testing.T) {
	for _, tt := range []struct {
		f           string
		verbs, pads int64
	}{
		{"plain", 0, 0},
		{"%s", 1, 0},
		{"%%s %d", 1, 0},
		{"%-8s|%03d", 2, 11},
		{"%9.2f", 1, 11},
		{"%[2]s %[1]s", 2, 3},
		{"%0999999999d", 1, 999999999},
		{"%99999999999999999999d", 1, saturate},
	} {
		if v, p := formatVerbs(tt.f); v != tt.verbs || p != tt.pads {
			t.Errorf("formatVerbs(%q) = %d, %d; want %d, %d", tt.f, v, p, tt.verbs, tt.pads)
		}
	}
}

func TestNumberDigits(t *testing.T) {
	for s, want := range map[string]int64{
		"12":                     4,
		"-1.5":                   5,
		"1e5":                    8,
		"1E+99999999":            100000002,
		"abc":                    0,
		"1e":                     0,
		"1.2.3":                  0,
		"":                       0,
		"1e99999999999999999999": saturate,
	} {
		if got := numberDigits(s); got != want {
			t.Errorf("numberDigits(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestFloatDigits(t *testing.T) {
	for s, least := range map[string]int64{"1": 1, "-42": 3, "1e300": 301, "0.5": 3, "1e-300": 302, "123456789012345678901234567890": 30} {
		f, _, err := big.ParseFloat(s, 10, 512, big.ToNearestEven)
		if err != nil {
			t.Fatal(err)
		}
		got := floatDigits(f)
		if got < least || got > least+200 {
			t.Errorf("floatDigits(%s) = %d, want %d to %d", s, got, least, least+200)
		}
		if text := int64(len(f.Text('f', -1))); got < text {
			t.Errorf("floatDigits(%s) = %d, shorter than %q", s, got, f.Text('f', -1))
		}
	}
}
