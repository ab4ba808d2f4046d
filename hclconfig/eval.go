package hclconfig

import (
	"os"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// environ is the runner's own environment. Tests replace it so that golden
// diagnostics do not depend on the machine running them.
var environ = os.Environ

// osEnv returns environ as a map. Entries without '=' cannot be set by a
// shell and are skipped rather than guessed at.
func osEnv() map[string]string {
	m := make(map[string]string)
	for _, kv := range environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			m[k] = v
		}
	}
	return m
}

// functions is the curated set of go-cty stdlib functions a config may call.
// Nothing here reads files or the clock, so a file evaluates the same way on
// every load; the environment is reachable only through the env variable.
// It is made on first use: the processes of the binary that never evaluate
// a file (the runner, its guard) do not keep it.
var functions = sync.OnceValue(func() map[string]function.Function {
	return map[string]function.Function{
		"coalesce":   stdlib.CoalesceFunc,
		"concat":     stdlib.ConcatFunc,
		"contains":   stdlib.ContainsFunc,
		"format":     stdlib.FormatFunc,
		"join":       stdlib.JoinFunc,
		"keys":       stdlib.KeysFunc,
		"length":     stdlib.LengthFunc,
		"lookup":     stdlib.LookupFunc,
		"lower":      stdlib.LowerFunc,
		"max":        stdlib.MaxFunc,
		"merge":      stdlib.MergeFunc,
		"min":        stdlib.MinFunc,
		"replace":    stdlib.ReplaceFunc,
		"split":      stdlib.SplitFunc,
		"substr":     stdlib.SubstrFunc,
		"title":      stdlib.TitleFunc,
		"tonumber":   stdlib.MakeToFunc(cty.Number),
		"tostring":   stdlib.MakeToFunc(cty.String),
		"trim":       stdlib.TrimFunc,
		"trimprefix": stdlib.TrimPrefixFunc,
		"trimspace":  stdlib.TrimSpaceFunc,
		"trimsuffix": stdlib.TrimSuffixFunc,
		"upper":      stdlib.UpperFunc,
		"values":     stdlib.ValuesFunc,
	}
})

// evalContext returns the context expressions are evaluated in: the variable
// env holds env, an object so that a missing env.FOO is hcl's own
// "Unsupported attribute" error with a snippet.
func evalContext(env map[string]string) *hcl.EvalContext {
	vals := make(map[string]cty.Value, len(env))
	for k, v := range env {
		vals[k] = cty.StringVal(v)
	}
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"env": cty.ObjectVal(vals)},
		Functions: functions(),
	}
}
