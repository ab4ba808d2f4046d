package hclconfig

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// scanHCL reads src as hcl's lexer (hclsyntax's scan_tokens.rl) does and
// hands the tokens that matter for nesting to c, without building them:
// brackets, braces, the template sequences that switch between code and
// string, operators, separators, newlines, numbers and the ends of terms.
//
// It must never see less nesting than hcl's lexer: whatever it takes for a
// string or a comment, hcl's lexer must too, or the parser could recurse
// where the check saw nothing. So it follows the lexer's rules for where a
// string, a heredoc, a comment and a template sequence begin and end
// exactly (FuzzScanHCL compares the two), and is free to be rougher
// elsewhere: a byte hcl would call invalid is just skipped.
func scanHCL(src []byte, c *depthCounter) {
	type mode struct {
		kind        int // modeMain, modeString or modeHeredoc
		marker      []byte
		startOfLine bool // heredoc: the next literal starts a line
	}
	const (
		modeMain = iota
		modeString
		modeHeredoc
	)
	modes := []mode{{kind: modeMain}}
	braces := 0
	var retBraces []int

	i := 0
	if bytes.HasPrefix(src, []byte("\xef\xbb\xbf")) {
		i = 3
	}
	tok := func(typ hclsyntax.TokenType, start, end int) {
		c.token(typ, start, end, "")
	}
	// enterSequence handles "${" and "%{" (with an optional "~") in a
	// template: the lexer counts a brace and scans code until it closes.
	enterSequence := func(start int) int {
		end := start + 2
		if end < len(src) && src[end] == '~' {
			end++
		}
		braces++
		retBraces = append(retBraces, braces)
		if src[start] == '$' {
			tok(hclsyntax.TokenTemplateInterp, start, end)
		} else {
			c.token(hclsyntax.TokenTemplateControl, start, end, directive(src, end))
		}
		if top := &modes[len(modes)-1]; top.kind == modeHeredoc {
			top.startOfLine = false
		}
		modes = append(modes, mode{kind: modeMain})
		return end
	}
	// closeSequence is the lexer's closeBrace: a "}" (or "~}") that closes
	// the innermost template sequence returns to its template.
	closeSequence := func(start, end int, tilde bool) {
		if len(retBraces) > 0 && retBraces[len(retBraces)-1] == braces && len(modes) > 1 {
			tok(hclsyntax.TokenTemplateSeqEnd, start, end)
			braces--
			retBraces = retBraces[:len(retBraces)-1]
			modes = modes[:len(modes)-1]
			return
		}
		if tilde {
			tok(hclsyntax.TokenTemplateSeqEnd, start, end)
		} else {
			tok(hclsyntax.TokenCBrace, start, end)
		}
		braces--
	}

	// afterRune: the last token was a non-ASCII character, right before
	// src[i]. See the case for it below.
	afterRune := false
	for i < len(src) && !c.stopped {
		top := &modes[len(modes)-1]
		wasAfterRune := afterRune
		afterRune = false
		switch top.kind {
		case modeString:
			switch b := src[i]; {
			case b == '"':
				tok(hclsyntax.TokenCQuote, i, i+1)
				modes = modes[:len(modes)-1]
				i++
			case (b == '$' || b == '%') && i+1 < len(src) && src[i+1] == '{':
				i = enterSequence(i)
			case (b == '$' || b == '%') && i+2 < len(src) && src[i+1] == b && src[i+2] == '{':
				i += 3 // "$${" and "%%{" are an escaped "${" and "%{"
			case b == '\\' && i+1 < len(src) && src[i+1] != '\n' && src[i+1] != '\r':
				i += 2 // an escape takes the next byte, whatever it is
			default:
				i++ // string text; a newline does not end a string
			}

		case modeHeredoc:
			b := src[i]
			switch {
			case (b == '$' || b == '%') && i+1 < len(src) && src[i+1] == '{':
				i = enterSequence(i)
				continue
			case (b == '$' || b == '%') && i+2 < len(src) && src[i+1] == b && src[i+2] == '{':
				i += 3
				top.startOfLine = false
				continue
			case b == '$' || b == '%':
				i++
				top.startOfLine = false
				continue
			}
			// A run of text up to "$", "%" or the end of the line. Only
			// a whole line, begun at the start of the line, can be the
			// closing marker.
			j := i
			for j < len(src) && src[j] != '$' && src[j] != '%' && src[j] != '\n' && src[j] != '\r' {
				j++
			}
			eol := 0
			switch {
			case j < len(src) && src[j] == '\n':
				eol = 1
			case j+1 < len(src) && src[j] == '\r' && src[j+1] == '\n':
				eol = 2
			}
			if eol == 0 {
				if j < len(src) && src[j] == '\r' {
					j++ // a lone CR stops hcl's lexer; reading on sees more, not less
				}
				top.startOfLine = false
				i = j
				continue
			}
			if top.startOfLine && bytes.Equal(bytes.TrimSpace(src[i:j]), top.marker) {
				tok(hclsyntax.TokenCHeredoc, i, j)
				tok(hclsyntax.TokenNewline, j, j+eol)
				modes = modes[:len(modes)-1]
			} else {
				top.startOfLine = true
			}
			i = j + eol

		default: // modeMain
			b := src[i]
			switch {
			case b == ' ' || b == '\t':
				i++
			case b == '\n':
				tok(hclsyntax.TokenNewline, i, i+1)
				i++
			case b == '\r' && i+1 < len(src) && src[i+1] == '\n':
				tok(hclsyntax.TokenNewline, i, i+2)
				i += 2
			case b >= 0x80:
				// A non-ASCII character: one token by itself, taken for
				// the end of a term. hcl may join it with what follows
				// into one identifier (or not, when it is no letter), and
				// so may or may not read "0e+1" after it as a number that
				// hides its "+". Reading the letters and digits after it
				// as a word, and every "+", "-" and "." as an operator,
				// can only count more nesting than hcl, never less.
				_, n := utf8.DecodeRune(src[i:])
				tok(hclsyntax.TokenIdent, i, i+n)
				i += n
				afterRune = true
			case wasAfterRune && (isIdentStart(b) || b >= '0' && b <= '9'):
				end := i + 1
				for end < len(src) && (isIdentStart(src[end]) || src[end] >= '0' && src[end] <= '9') {
					end++
				}
				tok(hclsyntax.TokenIdent, i, end)
				i = end
			case b >= '0' && b <= '9':
				end := numberEnd(src, i)
				tok(hclsyntax.TokenNumberLit, i, end)
				i = end
			case isIdentStart(b):
				end := identEnd(src, i)
				tok(hclsyntax.TokenIdent, i, end)
				i = end
			case b == '#' || b == '/' && i+1 < len(src) && src[i+1] == '/':
				end := len(src)
				if nl := bytes.IndexByte(src[i:], '\n'); nl >= 0 {
					end = i + nl + 1
				}
				tok(hclsyntax.TokenComment, i, end)
				i = end
			case b == '/' && i+1 < len(src) && src[i+1] == '*':
				if close := bytes.Index(src[i+2:], []byte("*/")); close >= 0 {
					end := i + 2 + close + 2
					tok(hclsyntax.TokenComment, i, end)
					i = end
				} else {
					// Unterminated, it is no comment to hcl's lexer but
					// a "/" and a "*".
					tok(hclsyntax.TokenSlash, i, i+1)
					i++
				}
			case b == '"':
				tok(hclsyntax.TokenOQuote, i, i+1)
				modes = append(modes, mode{kind: modeString})
				i++
			case b == '<' && i+1 < len(src) && src[i+1] == '<':
				if marker, end, ok := heredocIntro(src, i); ok {
					tok(hclsyntax.TokenOHeredoc, i, end)
					modes = append(modes, mode{kind: modeHeredoc, marker: marker, startOfLine: true})
					i = end
				} else {
					tok(hclsyntax.TokenLessThan, i, i+1)
					i++
				}
			case b == '{':
				tok(hclsyntax.TokenOBrace, i, i+1)
				braces++
				i++
			case b == '}':
				closeSequence(i, i+1, false)
				i++
			case b == '~' && i+1 < len(src) && src[i+1] == '}':
				closeSequence(i, i+2, true)
				i += 2
			default:
				typ, n := operator(src[i:])
				tok(typ, i, i+n)
				i += n
			}
		}
	}
}

// operator reads the punctuation token at the start of b, as one of hcl's
// two- or three-byte operators when it is one. Anything else is one byte.
func operator(b []byte) (hclsyntax.TokenType, int) {
	if len(b) >= 3 && string(b[:3]) == "..." {
		return hclsyntax.TokenEllipsis, 3
	}
	if len(b) >= 2 {
		switch string(b[:2]) {
		case "==":
			return hclsyntax.TokenEqualOp, 2
		case "!=":
			return hclsyntax.TokenNotEqual, 2
		case ">=":
			return hclsyntax.TokenGreaterThanEq, 2
		case "<=":
			return hclsyntax.TokenLessThanEq, 2
		case "&&":
			return hclsyntax.TokenAnd, 2
		case "||":
			return hclsyntax.TokenOr, 2
		case "::":
			return hclsyntax.TokenDoubleColon, 2
		case "=>":
			return hclsyntax.TokenFatArrow, 2
		}
	}
	switch b[0] {
	case '[', ']', '(', ')', '.', ',', '*', '/', '%', '+', '-', '=', '<', '>', '!', '?', ':', '&', '|', '~', '^', ';', '`', '\'':
		return hclsyntax.TokenType(b[0]), 1
	}
	return hclsyntax.TokenInvalid, 1
}

// isIdentStart is hcl's ID_Start for ASCII. Non-ASCII characters are
// read one at a time: whether hcl takes one into an identifier, and the
// "-" and digits after it too, depends on Unicode tables that need not
// match Go's, and reading an identifier too long could hide a "-" that
// hcl reads as an operator.
func isIdentStart(b byte) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// identEnd is the end of the ASCII identifier that starts at src[i].
func identEnd(src []byte, i int) int {
	for i++; i < len(src); i++ {
		b := src[i]
		if !(isIdentStart(b) || b >= '0' && b <= '9' || b == '-') {
			break
		}
	}
	return i
}

// numberEnd is hcl's NumberLit: a digit, then digits, dots and exponents
// ("e", a sign, a digit) as long as the literal does not end in a dot.
func numberEnd(src []byte, i int) int {
	end := i + 1
	j := end
	for j < len(src) {
		switch b := src[j]; {
		case b >= '0' && b <= '9':
			j++
			end = j
		case b == '.':
			j++
		case (b == 'e' || b == 'E') && j+1 < len(src) && src[j+1] >= '0' && src[j+1] <= '9':
			j += 2
			end = j
		case (b == 'e' || b == 'E') && j+2 < len(src) && (src[j+1] == '+' || src[j+1] == '-') && src[j+2] >= '0' && src[j+2] <= '9':
			j += 3
			end = j
		default:
			return end
		}
	}
	return end
}

// directive returns the keyword of the template directive whose "%{" ends
// at src[i], past spaces, for the depth count: "if" and "for" open a
// template block, "endif" and "endfor" close one. Where a non-ASCII byte
// makes it unclear which identifier hcl's lexer reads, it answers so that
// the count comes out deeper, never shallower: it opens, and never closes.
func directive(src []byte, i int) string {
	for i < len(src) && (src[i] == ' ' || src[i] == '\t') {
		i++
	}
	j := i
	for j < len(src) && (src[j] == '_' || src[j] == '-' || src[j] >= 'a' && src[j] <= 'z' || src[j] >= 'A' && src[j] <= 'Z' || src[j] >= '0' && src[j] <= '9') {
		j++
	}
	kw := string(src[i:j])
	if j < len(src) && src[j] >= 0x80 {
		switch {
		case strings.HasPrefix(kw, "if"):
			return "if"
		case strings.HasPrefix(kw, "for"):
			return "for"
		}
		return ""
	}
	return kw
}

// heredocIntro matches "<<" "-"? Ident Newline at src[i:], as hcl's
// BeginHeredocTmpl, and returns the marker that ends the heredoc. Whether
// a heredoc begins decides what is code and what is text, so it must agree
// with hcl exactly: a marker with a non-ASCII letter is checked with hcl's
// own identifier rules.
func heredocIntro(src []byte, i int) (marker []byte, end int, ok bool) {
	j := i + 2
	if j < len(src) && src[j] == '-' {
		j++
	}
	k := j
	ascii := true
	for k < len(src) && src[k] != '\n' && src[k] != '\r' {
		b := src[k]
		switch {
		case b >= 0x80:
			ascii = false
		case !(b == '_' || b == '-' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'):
			return nil, 0, false // ASCII punctuation or space: not one identifier
		}
		k++
	}
	marker = src[j:k]
	switch {
	case k < len(src) && src[k] == '\n':
		end = k + 1
	case k+1 < len(src) && src[k] == '\r' && src[k+1] == '\n':
		end = k + 2
	default:
		return nil, 0, false
	}
	if len(marker) == 0 || marker[0] == '-' || marker[0] >= '0' && marker[0] <= '9' {
		return nil, 0, false
	}
	if !ascii && !hclsyntax.ValidIdentifier(string(marker)) {
		return nil, 0, false
	}
	return marker, end, true
}
