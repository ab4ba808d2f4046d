package hclconfig

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// A config file, and every env file it names, is untrusted input. What a
// parser failure could cost is contained by reading it in a child process
// (package configload); the two bounds kept here are those whose message is
// better than that child's death, because they say where: a file too large
// to be a config, and an expression nested deeper than anyone writes (hcl's
// parser recurses once per level, and a file of 100,000 "[" overflows its
// stack).
const (
	// maxFileSize bounds cluster.hcl, a Procfile and each env file.
	maxFileSize = 1 << 20
	// maxDepth bounds how deeply expressions nest: brackets, braces,
	// parentheses, template interpolations and directives, and the chains
	// of operators, conditionals and index steps that nest the syntax tree
	// without brackets.
	maxDepth = 64
	// maxNumberExponent bounds a number literal's exponent and digits: a
	// number turns into a string digit by digit, so "1e99999999" would be
	// 100 MB, and minutes of CPU to write out.
	maxNumberExponent = 1000
)

// sizeError is the diagnostic for a file over maxFileSize; size is -1 when
// it is not known (a pipe). It points at the start of the file, whose first
// line (cut short) is all that is kept to show it.
func sizeError(filename string, size int64, files map[string]*hcl.File, src []byte) *hcl.Diagnostic {
	head := src
	if i := strings.IndexByte(string(head[:min(len(head), 200)]), '\n'); i >= 0 {
		head = head[:i]
	} else if len(head) > 200 {
		head = head[:200]
	}
	if files != nil {
		files[filename] = &hcl.File{Body: hcl.EmptyBody(), Bytes: head}
	}
	sizeText := thousands(size) + " bytes, more"
	if size < 0 {
		sizeText = "larger"
	}
	start := hcl.Pos{Line: 1, Column: 1}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "File too large",
		Detail:   fmt.Sprintf("The file is %s than the 1 MiB a config may have. A cluster.hcl, a Procfile or an env file is a few kilobytes; check that this is the file you meant.", sizeText),
		Subject:  &hcl.Range{Filename: filename, Start: start, End: start},
	}
}

// thousands formats n with commas between groups of three digits.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// depthFrame is one open bracket, or the bottom of the file.
type depthFrame struct {
	kind frameKind
	// chain counts the operators, "?" and index steps of the expression
	// being read at this level: each nests the syntax tree one deeper.
	chain int
	// closesBlock: the frame is a "%{ endif }" or "%{ endfor }" directive,
	// which also ends the template block its "%{ if }" opened.
	closesBlock bool
}

// frameKind is the kind of frame a token opens.
type frameKind int

const (
	frameBody     frameKind = iota // the file, or a block's or object's braces: newlines end expressions
	frameGroup                     // brackets, parentheses, interpolations: newlines do not
	frameTemplate                  // "%{ if }" or "%{ for }" up to its end directive
)

// checkSyntaxLimits reports the first token of src that nests deeper than
// maxDepth, and number literals too large to write out, with their
// positions, reading src with hcl's own lexer: what the parser would
// recurse into, it sees exactly. It runs in the config reader's child
// process (package configload), whose memory limit bounds the lexer's
// tokens, as they bound the parser's.
func checkSyntaxLimits(filename string, src []byte) hcl.Diagnostics {
	tokens, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	c := &depthCounter{stack: []depthFrame{{kind: frameBody}}, limit: maxDepth}
	var diags hcl.Diagnostics
	for i, tok := range tokens {
		if tok.Type == hclsyntax.TokenNumberLit {
			if msg := numberTooLarge(tok.Bytes); msg != "" {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Number too large", Detail: msg, Subject: tok.Range.Ptr()})
			}
		}
		keyword := ""
		if tok.Type == hclsyntax.TokenTemplateControl && i+1 < len(tokens) && tokens[i+1].Type == hclsyntax.TokenIdent {
			keyword = string(tokens[i+1].Bytes)
		}
		if c.token(tok, keyword) {
			return append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Nesting too deep",
				Detail:   fmt.Sprintf("The expression here is nested more than %d levels deep (brackets, braces, parentheses, template interpolations and chains of operators all count). No config needs that much; write it flatter.", maxDepth),
				Subject:  tok.Range.Ptr(),
			})
		}
	}
	return diags
}

// depthCounter follows a stream of hcl tokens and measures how deeply the
// parser would nest to read them.
type depthCounter struct {
	stack []depthFrame
	depth int // len(stack)-1 plus every frame's chain
	limit int // stop past this depth; 0: never stop (tests)
	max   int // the deepest depth seen
	// prevEndsTerm: the previous token ended a term, so a "[" after it is
	// an index step rather than a list.
	prevEndsTerm bool
}

// token takes the next token; keyword is the identifier after a "%{" (if,
// for, endif, ...). It reports whether the token goes past the limit.
func (c *depthCounter) token(tok hclsyntax.Token, keyword string) bool {
	endsTerm := false
	switch tok.Type {
	case hclsyntax.TokenOBrace:
		c.push(frameBody)
	case hclsyntax.TokenOBrack:
		if c.prevEndsTerm {
			c.chain() // an index step: a[x][y] nests a in two index nodes
		}
		c.push(frameGroup)
	case hclsyntax.TokenOParen, hclsyntax.TokenTemplateInterp:
		c.push(frameGroup)
	case hclsyntax.TokenTemplateControl:
		switch keyword {
		case "if", "for":
			c.push(frameTemplate)
			c.push(frameGroup)
		case "endif", "endfor":
			c.push(frameGroup)
			c.stack[len(c.stack)-1].closesBlock = true
		default:
			c.push(frameGroup)
		}
	case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenTemplateSeqEnd:
		if f := c.pop(); f.closesBlock && c.stack[len(c.stack)-1].kind == frameTemplate {
			c.pop()
		}
		endsTerm = true
	case hclsyntax.TokenComma, hclsyntax.TokenEqual, hclsyntax.TokenFatArrow:
		c.endExpr()
	case hclsyntax.TokenNewline:
		if c.stack[len(c.stack)-1].kind == frameBody {
			c.endExpr()
		}
	case hclsyntax.TokenComment:
		// A "#" or "//" comment takes the newline that ends it, and the
		// parser reads that as a newline.
		if b := tok.Bytes; len(b) > 0 && b[len(b)-1] == '\n' && c.stack[len(c.stack)-1].kind == frameBody {
			c.endExpr()
		}
		return false // a comment between a term and "[" does not separate them
	case hclsyntax.TokenPlus, hclsyntax.TokenMinus, hclsyntax.TokenStar, hclsyntax.TokenSlash,
		hclsyntax.TokenPercent, hclsyntax.TokenEqualOp, hclsyntax.TokenNotEqual,
		hclsyntax.TokenLessThan, hclsyntax.TokenLessThanEq, hclsyntax.TokenGreaterThan,
		hclsyntax.TokenGreaterThanEq, hclsyntax.TokenAnd, hclsyntax.TokenOr,
		hclsyntax.TokenBang, hclsyntax.TokenQuestion:
		c.chain()
	case hclsyntax.TokenIdent, hclsyntax.TokenNumberLit, hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc:
		endsTerm = true
	}
	c.prevEndsTerm = endsTerm
	c.max = max(c.max, c.depth)
	return c.limit > 0 && c.depth > c.limit
}

func (c *depthCounter) push(kind frameKind) {
	c.stack = append(c.stack, depthFrame{kind: kind})
	c.depth++
}

func (c *depthCounter) pop() depthFrame {
	if len(c.stack) == 1 {
		return depthFrame{} // an unbalanced closer: the parser reports it
	}
	f := c.stack[len(c.stack)-1]
	c.stack = c.stack[:len(c.stack)-1]
	c.depth -= 1 + f.chain
	return f
}

func (c *depthCounter) chain() {
	c.stack[len(c.stack)-1].chain++
	c.depth++
}

func (c *depthCounter) endExpr() {
	top := &c.stack[len(c.stack)-1]
	c.depth -= top.chain
	top.chain = 0
}

// numberTooLarge explains why a number literal is refused, or returns "":
// a number turns into a string digit by digit, so "1e99999999" is 13 bytes
// of file and 100 MB of digits. A malformed literal ("1e5e5") is left to
// the parser.
func numberTooLarge(lit []byte) string {
	s := string(lit)
	mantissa, exp, hasExp := strings.Cut(strings.ToLower(s), "e")
	tooLarge := len(mantissa) > maxNumberExponent
	if hasExp {
		digits := strings.TrimLeft(exp, "+-")
		switch n, _ := strconv.Atoi(digits); {
		case len(exp)-len(digits) > 1 || !isDigits(digits):
			return "" // malformed: the parser says so
		case len(digits) > 6 || n > maxNumberExponent:
			tooLarge = true
		}
	}
	if !tooLarge {
		return ""
	}
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return fmt.Sprintf("The number %s has more than %d digits when written out, far beyond any count, port or size a config holds. Write the number you mean.", s, maxNumberExponent)
}
