package logmux

import (
	"bytes"
	"io"
	"unicode/utf8"
)

// split reads r until EOF or a read error and calls emit once per line, without
// its "\n" or "\r\n". A line longer than maxLine is emitted in pieces of at
// most maxLine bytes, all but the last with cut set, so that an endless line
// never has to fit in memory and the child writing it never stalls. An
// unterminated last line is emitted at EOF. line aliases buf and is only
// valid during the call.
//
// buf must hold maxLine+2 bytes: then a line of exactly maxLine bytes still
// fits together with its "\r\n", and a buffer full of bytes with no newline
// always means the line is too long.
func split(r io.Reader, buf []byte, maxLine int, emit func(line []byte, cut bool)) {
	end := 0 // buf[:end] is the start of a line whose end has not been read yet
	for {
		n, err := r.Read(buf[end:])
		start, scan := 0, end // buf[:scan] is known to hold no newline
		end += n
		for {
			i := bytes.IndexByte(buf[scan:end], '\n')
			if i < 0 {
				break
			}
			nl := scan + i
			emitPieces(trimCR(buf[start:nl]), maxLine, emit)
			start, scan = nl+1, nl+1
		}
		if start == 0 && end == len(buf) {
			k := cutPoint(buf[:end], maxLine)
			emit(buf[:k], true)
			start = k
		}
		if start > 0 {
			end = copy(buf, buf[start:end])
		}
		if err != nil {
			if end > 0 {
				emitPieces(buf[:end], maxLine, emit)
			}
			return
		}
	}
}

// emitPieces emits one complete line, cut into pieces if it is longer than
// maxLine. The read buffer can hold a complete line one byte over maxLine.
func emitPieces(line []byte, maxLine int, emit func(line []byte, cut bool)) {
	for len(line) > maxLine {
		k := cutPoint(line, maxLine)
		emit(line[:k], true)
		line = line[k:]
	}
	emit(line, false)
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

// cutPoint returns where to end a piece of b, which is longer than maxLine: at
// most maxLine, moved back to a rune boundary so that each piece stays valid
// UTF-8 on its own. Invalid input, or a maxLine smaller than the rune, is
// cut at maxLine.
func cutPoint(b []byte, maxLine int) int {
	for k := maxLine; k > 0 && k > maxLine-utf8.UTFMax; k-- {
		if utf8.RuneStart(b[k]) {
			return k
		}
	}
	return maxLine
}
