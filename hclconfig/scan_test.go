package hclconfig

import (
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// lexedDepth measures src as checkSyntaxLimits does, but from hcl's own
// lexer: the reference scanHCL must never fall short of.
func lexedDepth(src []byte) (int, hcl.Diagnostics) {
	tokens, _ := hclsyntax.LexConfig(src, "x.hcl", hcl.InitialPos)
	c := newDepthCounter("x.hcl", src, 0)
	for i, tok := range tokens {
		kw := ""
		if tok.Type == hclsyntax.TokenTemplateControl && i+1 < len(tokens) && tokens[i+1].Type == hclsyntax.TokenIdent {
			kw = string(tokens[i+1].Bytes)
		}
		c.token(tok.Type, tok.Range.Start.Byte, tok.Range.End.Byte, kw)
	}
	return c.max, c.diags
}

func scannedDepth(src []byte) (int, hcl.Diagnostics) {
	c := newDepthCounter("x.hcl", src, 0)
	scanHCL(src, c)
	return c.max, c.diags
}

// compareScan checks that scanHCL sees at least the nesting hcl's lexer
// does, and the same number literals; exactly the same depth when the
// file is plain ASCII, where there is nothing to approximate.
func compareScan(t *testing.T, src []byte) {
	t.Helper()
	want, wantDiags := lexedDepth(src)
	got, gotDiags := scannedDepth(src)
	ascii := true
	for _, b := range src {
		if b >= 0x80 || b == '\r' {
			ascii = false
			break
		}
	}
	if got < want || ascii && got != want {
		t.Fatalf("scanHCL depth %d, hcl's lexer %d, for %q", got, want, src)
	}
	if ascii && len(gotDiags) != len(wantDiags) {
		t.Fatalf("scanHCL found %d large numbers, hcl's lexer %d, in %q", len(gotDiags), len(wantDiags), src)
	}
}

func TestScanHCLMatchesLexer(t *testing.T) {
	cases := []string{
		`a = [[1], {b = (2)}]`,
		`a = "${[1]}" b = "$${[[[" c = "%%{[[" d = "\${[[[["`,
		`a = "x
[[[" b = [[`,
		"a = <<EOT\n[[[ ${[1]} \"\nEOT\nb = [[1]]\n",
		"a = <<-EOT\n  [[[\n  EOT\nb = [1]\n",
		"a = <<EOT\n  EOT x\n[[[\nEOT\n",
		"a = <<EOT [[\n",
		"a = <<EOT\n$EOT\nEOT\n[[\n",
		"a = <<EOT\n${\"\n\"}EOT\n[[[\nEOT\n",
		"# [[[\n// [[[\n/* [[[ */ a = [1] /* [[[",
		"a = \"%{ if true }[%{ for x in y }]%{ endfor }%{ endif }\"",
		"a = \"%{~if true ~}x%{~ endif ~}\"",
		"a = \"${ {a = \"${ {b = 1} }\"} }\"",
		"a = \"${ [ }\" ] [[ \"",
		"a = ~} [ { ~} [",
		"a = 1e5 + 1.5e-3 + 1..2 + 1.e5 + 9e9999",
		"a = x[0][1].y[*][2]\nb = f()[0]",
		"a = !!-1 == 2 ? 3 : 4 ? 5 : 6 && 7 || 8 >= 9 <= 10 != 11",
		"a = [for x in y : x => z if w]",
		"\xef\xbb\xbfa = [[1]]",
		"a = \"\\\n[[[\" b = [[",
		"a = \"$\" b = \"%\" c = \"$$\" d = \"$$${[1]}\"",
		"a = <<EOT\r\n[[\r\nEOT\r\n[[1]]\r\n",
		"a = <<EOT\n$${[[\n%{if x}[[%{endif}\nEOT\n",
		"a = <<ÉOT\n[[[\nÉOT\n[[1]]\n",
		"a = <<E→T\n[[[\nE→T\n[[1]]\n",
		"a = \"%{ ifé }x%{ endifé }\"",
	}
	for _, c := range cases {
		if !utf8.Valid([]byte(c)) {
			t.Fatalf("case %q is not UTF-8", c)
		}
		compareScan(t, []byte(c))
	}
	// Every config in the repository.
	for _, pattern := range []string{"testdata/*/*.hcl", "testdata/*/*/*.hcl", "../examples/*/cluster.hcl"} {
		paths, _ := filepath.Glob(pattern)
		for _, p := range paths {
			src, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			compareScan(t, src)
		}
	}
}

// TestNotUTF8: hcl's lexer reads a broken UTF-8 sequence unpredictably (it
// takes the quote after 0xE5 into an identifier, FuzzScanHCL found), so
// such a file is refused before the scan.
func TestNotUTF8(t *testing.T) {
	for _, src := range []string{"\xe5\"0!", "a = \"caf\xe9\"\n", "# caf\xe9\napp \"a\" {}\n"} {
		diags := checkSyntaxLimits("x.hcl", []byte(src))
		if len(diags) != 1 || diags[0].Summary != "Invalid character encoding" {
			t.Errorf("%q: %v", src, diags)
		}
	}
	if diags := checkSyntaxLimits("x.hcl", []byte("a = \"café ☕\"\n")); len(diags) != 0 {
		t.Errorf("UTF-8 refused: %v", diags)
	}
}

// FuzzScanHCL compares scanHCL with hcl's lexer on any input: it must
// never see less nesting, or the parser could recurse where the limit saw
// nothing.
func FuzzScanHCL(f *testing.F) {
	seed(f, "testdata/valid/*.hcl", "testdata/invalid/*.hcl", "../examples/*/cluster.hcl")
	for _, s := range []string{
		"a = <<EOT\n${\"\n\"}EOT\n[[[\nEOT\n",
		"a = \"${ [ }\" ] [[ \"",
		"a = \"%{ if true }[%{ endif }\"",
		"a = <<-X\n  X\n[[[",
		"/* [[ */ # [[\n[[",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 4096 || !utf8.Valid(src) {
			return // checkSyntaxLimits refuses a file that is not UTF-8 first
		}
		compareScan(t, src)
	})
}
