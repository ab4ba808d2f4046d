package httpmode

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/clusterrun/clusterrun/route"
)

// request is one request's forwarding state, on its connection's goroutine.
type request struct {
	cc *clientConn
	// body framing: length (when not chunked) and what is left to read.
	chunked bool
	length  int64
	// replay holds the whole body when it was read before sending, so the
	// request can go to another instance; nil when it streams (or has no
	// body, then bodyless is set).
	replay   []byte
	bodyless bool
	idem     bool
	upgrade  bool
	// raw is how many bytes after the head in cc.rb the held body took
	// (more than len(replay) for a chunked one); held, the pool buffer
	// that holds a chunked one's data.
	raw  int
	held *[]byte
	// ch is the decoder of a chunked body; pre, data it decoded before it
	// was found too large to hold, sent as the first chunk.
	ch  chunked
	pre []byte
	// bodyDone: the client's body was read in full.
	bodyDone bool
	lease    route.Lease
	tried    []*route.Target
	triedBuf [4]*route.Target
	resp     head
	// streamed: the body is being or was read from the client as it is
	// sent; the head's bytes in cc.rb are gone, and the request cannot be
	// sent again.
	streamed bool
	isHead   bool
	// cookieID is the instance the client's sticky cookie names (0: none);
	// setCookie, whether the answer sets it anew; stopped, that the
	// client's instance is stopping (see Server.Stopping).
	cookieID  uint64
	setCookie bool
	stopped   bool
	// now is when the request's head was read; start and end the same
	// and the end of its answer on route's clock.
	now        time.Time
	start, end int64
	// What the access log and the figures get.
	status int
	bytes  int64
	b      *backend
}

// errClient marks a failure of the client's side: the client connection
// cannot go on, nothing more is said to it.
type clientError struct{ err error }

func (e clientError) Error() string { return "client: " + e.err.Error() }

// handle forwards the request in cc.req and writes its answer. It reports
// whether the client connection can carry another request.
func (cc *clientConn) handle() bool {
	s := cc.s
	h := &cc.req
	hb := cc.rb[cc.r:]
	now := time.Now()
	// The connection's request is reused: its response head's fields
	// keep their room, and a request allocates nothing.
	rq := &cc.rq
	fields := rq.resp.fields
	*rq = request{cc: cc, now: now, start: route.At(now)}
	rq.resp.fields = fields[:0]
	rq.tried = rq.triedBuf[:0]
	clientKeep := (h.minor == 1 && !h.connClose) || (h.minor == 0 && h.connKeepAlive)
	method := h.method.of(hb)
	rq.idem = idempotent(method)
	rq.isHead = string(method) == "HEAD"
	if s.o.AccessLog != nil {
		cc.logLine = append(append(append(cc.logLine[:0], method...), ' '), h.target.of(hb)...)
	}
	if s.o.StickyCookie != "" {
		rq.cookieID = cc.stickyID()
	}
	rq.upgrade = h.connUpgrade && !h.upgrade.empty() && h.minor == 1
	if string(method) == "CONNECT" {
		cc.refuse(501, "CONNECT is not forwarded")
		return false
	}
	switch {
	case h.chunked:
		rq.chunked = true
	case h.contentLength > 0:
		rq.length = h.contentLength
	default:
		rq.bodyless = true
	}
	// A body small enough is read whole before it is sent, so that the
	// request can be sent again (and a chunked one is checked in full
	// before any of it is); one that waits for 100-continue cannot be.
	if !rq.bodyless && rq.length <= int64(s.o.MaxRetryBody) && !h.expect100 {
		if rq.chunked {
			if !cc.readChunked(rq) {
				return false
			}
		} else if !cc.readBody(rq) {
			return false
		}
	}
	ok := cc.forward(rq, clientKeep)
	if rq.end == 0 {
		rq.end = route.Now()
	}
	if !rq.streamed {
		cc.r += h.size + rq.raw
	}
	if rq.held != nil {
		*rq.held = (*rq.held)[:0]
		heldPool.Put(rq.held)
	}
	if s.access != nil && rq.status != 0 {
		cc.logEntry(rq)
	}
	if rq.b != nil && rq.status != 0 {
		rq.b.stats.observe(rq.status, rq.end-rq.start, rq.end)
	}
	return ok && clientKeep && !cc.isClosing()
}

// readBody reads the whole body of rq (its Content-Length) into replay.
func (cc *clientConn) readBody(rq *request) bool {
	h := &cc.req
	need := h.size + int(rq.length)
	if cc.w-cc.r >= need {
		rq.replay = cc.rb[cc.r+h.size : cc.r+need]
		rq.raw = len(rq.replay)
		return true
	}
	if len(cc.rb)-cc.r < need {
		if need <= len(cc.rb) {
			cc.w = copy(cc.rb, cc.rb[cc.r:cc.w])
			cc.r = 0
		} else {
			nb := make([]byte, need)
			cc.w = copy(nb, cc.rb[cc.r:cc.w])
			cc.r = 0
			cc.rb = nb
		}
	}
	readBy(cc.conn(), &cc.rdl, rq.now.Add(cc.s.o.IdleTimeout))
	for cc.w-cc.r < need {
		n, err := cc.conn().Read(cc.rb[cc.w:])
		cc.w += n
		if err != nil && cc.w-cc.r < need {
			return false
		}
	}
	rq.replay = cc.rb[cc.r+h.size : cc.r+need]
	rq.raw = len(rq.replay)
	return true
}

// heldPool holds the buffers of chunked bodies read whole.
var heldPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// readChunked reads a chunked body whole, decoded, when its data fits in
// MaxRetryBody (replay; it then goes on with a length), or as much as that
// (pre; the rest then streams). It answers a malformed body with 400 and
// reports false when the connection ends.
func (cc *clientConn) readChunked(rq *request) bool {
	h := &cc.req
	s := cc.s
	held := heldPool.Get().(*[]byte)
	rq.held = held
	data := (*held)[:0]
	pos := cc.r + h.size
	// The raw bytes may take more room than the data: bounded all the same.
	limit := h.size + 2*s.o.MaxRetryBody + 4<<10
	readBy(cc.conn(), &cc.rdl, rq.now.Add(s.o.IdleTimeout))
	for {
		for pos < cc.w && !rq.ch.done() {
			used, d, err := rq.ch.next(cc.rb[pos:cc.w])
			if err != nil {
				cc.refuse(400, "malformed chunked body: "+err.Error())
				return false
			}
			pos += used
			data = append(data, d...)
			if len(data) > s.o.MaxRetryBody {
				break
			}
		}
		if rq.ch.done() {
			*held = data
			rq.replay = data
			rq.raw = pos - (cc.r + h.size)
			return true
		}
		if len(data) > s.o.MaxRetryBody || pos-cc.r >= limit {
			// Too large to hold: what is decoded goes first, the rest
			// streams from pos.
			*held = data
			rq.pre = data
			rq.raw = pos - (cc.r + h.size)
			return true
		}
		if cc.w == len(cc.rb) {
			nb := make([]byte, min(2*len(cc.rb), limit+cliBufSize))
			cc.w = copy(nb, cc.rb[cc.r:cc.w])
			pos -= cc.r
			cc.r = 0
			cc.rb = nb
		}
		n, err := cc.conn().Read(cc.rb[cc.w:])
		cc.w += n
		if n == 0 && err != nil {
			return false
		}
	}
}

// forward sends rq to an instance, retrying where that is safe, and writes
// the answer to the client. It reports whether the client connection is
// still usable.
func (cc *clientConn) forward(rq *request, clientKeep bool) bool {
	s := cc.s
	h := &cc.req
	retried := false
	for {
		b, stuck := cc.pick(rq)
		if b == nil {
			// None can take it: 503, or 502 when every one failed; 503
			// when the client's own instance is stopping.
			status := 503
			if len(rq.tried) > 0 && !rq.stopped {
				status = 502
			}
			return cc.answerOwn(rq, status, clientKeep)
		}
		s.table.Acquire(b.t, &rq.lease, rq.start, cc.key)
		if b.t.Removed() && (!stuck || b.gone.Load()) {
			// It left the set (or was forgotten) while it was picked: it
			// gets nothing new. The lease was taken first, so Quiesce saw
			// it.
			s.table.Release(&rq.lease)
			rq.tried = append(rq.tried, b.t)
			continue
		}
		rq.setCookie = s.o.StickyCookie != "" && rq.cookieID != b.t.ID
		bc, err := b.get(rq.resendable(h, stuck, retried), rq.start), error(nil)
		if bc == nil {
			bc, err = b.dial(context.Background(), s.o.ConnectTimeout)
			if err != nil {
				s.table.Release(&rq.lease)
				// Never delivered: any request may go elsewhere.
				s.log.Printf("cannot connect to instance %s.%d at %s: %v; trying another", b.t.App, b.t.Slot, b.t.Addr, err)
				rq.tried = append(rq.tried, b.t)
				continue
			}
		}
		rq.b = b
		res := cc.exchange(rq, bc, clientKeep)
		s.table.Release(&rq.lease)
		switch res {
		case exDone:
			return true
		case exDoneClose:
			return false
		case exNotDelivered:
			if !bc.reused {
				rq.tried = append(rq.tried, b.t)
			}
			continue
		case exFailedEarly:
			// It may have reached the instance: only a request that means
			// the same when sent twice, whose body we hold, goes again,
			// once; and not one stuck to its instance, whose session
			// another instance does not know.
			if rq.resendable(h, stuck, retried) {
				retried = true
				rq.tried = append(rq.tried, b.t)
				s.log.Printf("instance %s.%d at %s failed a request before answering; sent it to another", b.t.App, b.t.Slot, b.t.Addr)
				continue
			}
			return cc.answerOwn(rq, 502, clientKeep && rq.bodyDone)
		case exTimeout:
			return cc.answerOwn(rq, 504, clientKeep && rq.bodyDone)
		case exBadAnswer:
			return cc.answerOwn(rq, 502, clientKeep && rq.bodyDone)
		case exBroken:
			return false
		}
	}
}

// resendable reports whether rq, failed before any byte of an answer, goes
// to another instance: a request that means the same when sent twice,
// whose body is held, sent once so far; not one stuck to its instance,
// whose session another instance does not know, nor one that waits for
// 100 Continue.
func (rq *request) resendable(h *head, stuck, retried bool) bool {
	return rq.idem && (rq.bodyless || rq.replay != nil) && !retried && !h.expect100 && !stuck
}

// answerOwn answers rq with a status of the runner's own (no instance
// answered) and reports whether the connection goes on: only when the
// request's body was read in full.
func (cc *clientConn) answerOwn(rq *request, status int, keep bool) bool {
	if !rq.bodyless && rq.replay == nil && !rq.bodyDone {
		keep = false
	}
	rq.status = status
	var extra []byte
	if rq.stopped {
		extra = retryAfter
	}
	cc.writeError(status, !keep, extra)
	return keep
}

var retryAfter = []byte("Retry-After: 1\r\n")

// Outcomes of one exchange with an instance.
const (
	exDone         = iota // answered; the client connection goes on
	exDoneClose           // answered; the client connection ends
	exNotDelivered        // the instance never got the request
	exFailedEarly         // it failed before the first byte of an answer
	exTimeout             // no answer within Timeout
	exBadAnswer           // a malformed or cut answer head: 502, not retried
	exBroken              // failed midway: the client connection ends
)

// exchange sends rq over bc and relays the answer. bc is closed or pooled
// before it returns.
func (cc *clientConn) exchange(rq *request, bc *beConn, clientKeep bool) int {
	s := cc.s
	h := &cc.req
	out := cc.requestHead(rq, cc.rb[cc.r:])
	// The body goes with the head when it is held, or as much of it as is
	// read already (a chunked one's decoded data as our first chunk).
	var pre []byte
	sentBody := 0
	switch {
	case rq.replay != nil:
		pre = rq.replay
	case rq.chunked:
		if len(rq.pre) > 0 {
			out = appendChunkHead(out, len(rq.pre))
			out = append(out, rq.pre...)
			out = append(out, '\r', '\n')
		}
	case !rq.bodyless:
		pre = cc.rb[cc.r+h.size : cc.w]
		if int64(len(pre)) > rq.length {
			pre = pre[:rq.length]
		}
		sentBody = len(pre)
	}
	out = append(out, pre...)
	cc.out = out
	writeBy(bc.c, &bc.wdl, rq.now.Add(s.o.Timeout))
	if _, err := bc.c.Write(out); err != nil {
		bc.close()
		return exNotDelivered
	}
	cc.out = out[:0]
	rq.lease.Sent(rq.start)
	s.table.Forwarded(&rq.lease)
	if rq.replay != nil || rq.bodyless {
		rq.bodyDone = true
	} else {
		// Streamed: from here on the request cannot be sent again, and
		// the head's bytes make room for the body's.
		rq.streamed = true
		cc.r += h.size + rq.raw
		send := true
		if h.expect100 && sentBody == 0 && len(rq.pre) == 0 {
			// The client waits for 100 Continue before its body: the
			// instance says whether it wants it, or answers at once.
			var res int
			if send, res = cc.awaitContinue(rq, bc); res >= 0 {
				return res
			}
		}
		if send {
			if err := cc.streamBody(rq, bc, sentBody); err != nil {
				bc.close()
				var ce clientError
				if errors.As(err, &ce) {
					return exBroken
				}
				return exFailedEarly
			}
			rq.bodyDone = true
		}
	}

	// The answer.
	readBy(bc.c, &bc.rdl, rq.now.Add(s.o.Timeout))
	for {
		err := bc.readHead(&rq.resp)
		if err != nil {
			bc.close()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.log.Printf("instance %s.%d at %s did not answer within %v: 504", rq.b.t.App, rq.b.t.Slot, rq.b.t.Addr, s.o.Timeout)
				return exTimeout
			}
			if err == errGotNothing {
				return exFailedEarly
			}
			// Part of an answer came, or a malformed one: nothing is sent
			// again.
			s.log.Printf("instance %s.%d at %s sent a malformed or cut answer (%v): 502", rq.b.t.App, rq.b.t.Slot, rq.b.t.Addr, err)
			return exBadAnswer
		}
		r := &rq.resp
		if r.status >= 100 && r.status < 200 && r.status != 101 {
			// An interim answer (100 Continue, 103 Early Hints): passed on
			// to a 1.1 client, then the real one follows.
			if h.minor == 1 {
				cc.out = cc.responseHead(rq, bc.rb[bc.r:], false, false)
				if _, err := cc.writeOut(); err != nil {
					bc.close()
					return exBroken
				}
			}
			bc.r += r.size
			continue
		}
		break
	}
	s.table.Answered(&rq.lease, route.Now())
	r := &rq.resp
	rb := bc.rb[bc.r:]
	rq.status = r.status
	if r.status == 101 {
		if !rq.upgrade {
			// Switching protocols nobody asked for.
			bc.close()
			return exBadAnswer
		}
		return cc.tunnel(rq, bc)
	}
	noBody := rq.isHead || r.status == 204 || r.status == 304
	// How the body reaches the client: as the instance framed it (a
	// length), chunked by us (chunked, or ended by the instance's close,
	// to a 1.1 client), or ended by our close (a 1.0 client, or a coding
	// we cannot frame).
	chunkOut := false
	// A body the client was told not to send (a final answer instead of
	// 100 Continue) may still come: the connection cannot go on.
	closeAfter := !clientKeep || cc.isClosing() || !rq.bodyDone
	untilClose := !noBody && !r.chunked && r.contentLength < 0
	switch {
	case noBody:
	case r.teOther:
		closeAfter = true
	case r.chunked || untilClose:
		if h.minor == 1 {
			chunkOut = true
		} else {
			closeAfter = true
		}
	}
	cc.out = cc.responseHead(rq, rb, chunkOut, closeAfter)
	bc.r += r.size
	backendKeep := !untilClose && ((r.minor == 1 && !r.connClose) || (r.minor == 0 && r.connKeepAlive))
	var err error
	switch {
	case noBody:
		_, err = cc.writeOut()
		if err != nil {
			err = clientError{err}
		}
	case r.chunked:
		err = cc.relayChunked(rq, bc, chunkOut)
	case r.contentLength >= 0:
		err = cc.relayLength(rq, bc, r.contentLength)
	default:
		err = cc.relayUntilClose(rq, bc, chunkOut)
	}
	if err != nil {
		bc.close()
		var ce clientError
		if !errors.As(err, &ce) {
			s.log.Printf("instance %s.%d at %s failed in the middle of an answer: %v", rq.b.t.App, rq.b.t.Slot, rq.b.t.Addr, err)
		}
		return exBroken
	}
	rq.end = route.Now()
	if backendKeep && bc.r == bc.w && !rq.b.t.Removed() {
		rq.b.put(bc, rq.end)
	} else {
		bc.close()
	}
	if closeAfter {
		return exDoneClose
	}
	return exDone
}

var errGotNothing = errors.New("connection closed before any byte of an answer")

// continueWait is how long an instance has to say 100 Continue before the
// body is sent anyway, as curl waits.
const continueWait = time.Second

// awaitContinue reads the instance's first answer to a request that
// expects 100-continue. send says whether the body goes now: after a 100
// (passed on to the client), or when the instance said nothing within
// continueWait (some never say it); not when it answered in full at once.
// res is an outcome when the exchange is over, else -1.
func (cc *clientConn) awaitContinue(rq *request, bc *beConn) (send bool, res int) {
	readBy(bc.c, &bc.rdl, time.Now().Add(min(continueWait, cc.s.o.Timeout)))
	for {
		err := bc.readHead(&rq.resp)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return true, -1
		case err != nil:
			bc.close()
			return false, exFailedEarly
		}
		r := &rq.resp
		if r.status >= 200 || r.status == 101 {
			return false, -1 // the answer loop reads it again
		}
		// 100 Continue, or another interim answer: passed on.
		cc.out = cc.responseHead(rq, bc.rb[bc.r:], false, false)
		bc.r += r.size
		if _, err := cc.writeOut(); err != nil {
			bc.close()
			return false, exBroken
		}
		if r.status == 100 {
			return true, -1
		}
	}
}

// readHead reads until bc.rb holds a whole response head and parses it.
func (bc *beConn) readHead(h *head) error {
	for {
		if bc.w > bc.r {
			err := parseResponse(bc.rb[bc.r:bc.w], h)
			if err == nil {
				return nil
			}
			if err != errIncomplete {
				return err
			}
			if bc.w-bc.r >= maxResponseHead {
				return errTooLarge
			}
		}
		if bc.w == len(bc.rb) {
			if bc.r > 0 {
				bc.w = copy(bc.rb, bc.rb[bc.r:bc.w])
				bc.r = 0
			} else {
				nb := make([]byte, min(2*len(bc.rb), maxResponseHead+1))
				copy(nb, bc.rb[:bc.w])
				bc.rb = nb
			}
		}
		n, err := bc.c.Read(bc.rb[bc.w:])
		bc.w += n
		if err != nil && n == 0 {
			if bc.w == bc.r && !errors.Is(err, os.ErrDeadlineExceeded) {
				return errGotNothing
			}
			return err
		}
	}
}

// writeOut writes cc.out to the client, which has IdleTimeout to take it.
func (cc *clientConn) writeOut() (int, error) {
	if len(cc.out) == 0 {
		return 0, nil
	}
	n := 0
	if cc.wdl.IsZero() && cc.canTry() {
		// No write deadline yet (a new connection): what the socket takes
		// at once needs none, and an answer usually fits (see readHead).
		var err error
		if n, err = cc.tryWrite(cc.out); err != nil || n == len(cc.out) {
			cc.out = cc.out[:0]
			return n, err
		}
	}
	writeBy(cc.conn(), &cc.wdl, time.Now().Add(cc.s.o.IdleTimeout))
	m, err := cc.conn().Write(cc.out[n:])
	cc.out = cc.out[:0]
	return n + m, err
}

// flushAt is how much output is gathered before it is written.
const flushAt = 16 << 10

// relayLength copies n bytes of body from bc to the client, behind the head
// in cc.out.
func (cc *clientConn) relayLength(rq *request, bc *beConn, n int64) error {
	for {
		avail := int64(bc.w - bc.r)
		take := min(avail, n)
		if take > 0 {
			if len(cc.out)+int(take) <= flushAt || len(cc.out) == 0 {
				cc.out = append(cc.out, bc.rb[bc.r:bc.r+int(take)]...)
			} else {
				if _, err := cc.writeOut(); err != nil {
					return clientError{err}
				}
				cc.out = append(cc.out, bc.rb[bc.r:bc.r+int(take)]...)
			}
			bc.r += int(take)
			n -= take
			rq.bytes += take
		}
		if n == 0 || len(cc.out) >= flushAt {
			if _, err := cc.writeOut(); err != nil {
				return clientError{err}
			}
		}
		if n == 0 {
			return nil
		}
		if err := bc.fill(); err != nil {
			return err
		}
		rq.lease.Received(route.Now())
	}
}

// fill reads more from the instance into an empty buffer; within the
// body the instance has Timeout between two reads.
func (bc *beConn) fill() error {
	if bc.r == bc.w {
		bc.r, bc.w = 0, 0
	}
	readBy(bc.c, &bc.rdl, time.Now().Add(bc.b.s.o.Timeout))
	n, err := bc.c.Read(bc.rb[bc.w:])
	bc.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// relayChunked decodes the instance's chunked body and writes its data
// with framing of our own (chunkOut) or none (a 1.0 client, which sees the
// end by our close).
func (cc *clientConn) relayChunked(rq *request, bc *beConn, chunkOut bool) error {
	var ch chunked
	for {
		for bc.r < bc.w && !ch.done() {
			used, data, err := ch.next(bc.rb[bc.r:bc.w])
			if err != nil {
				return err
			}
			bc.r += used
			if len(data) > 0 {
				if err := cc.emit(data, chunkOut); err != nil {
					return err
				}
				rq.bytes += int64(len(data))
			}
		}
		if ch.done() {
			if chunkOut {
				cc.out = append(cc.out, lastChunk...)
			}
			if _, err := cc.writeOut(); err != nil {
				return clientError{err}
			}
			return nil
		}
		if len(cc.out) > 0 {
			if _, err := cc.writeOut(); err != nil {
				return clientError{err}
			}
		}
		if err := bc.fill(); err != nil {
			return err
		}
		rq.lease.Received(route.Now())
	}
}

// relayUntilClose copies the body up to the instance's close.
func (cc *clientConn) relayUntilClose(rq *request, bc *beConn, chunkOut bool) error {
	for {
		if bc.w > bc.r {
			data := bc.rb[bc.r:bc.w]
			if err := cc.emit(data, chunkOut); err != nil {
				return err
			}
			rq.bytes += int64(len(data))
			bc.r = bc.w
		}
		if _, err := cc.writeOut(); err != nil {
			return clientError{err}
		}
		err := bc.fill()
		if err == io.ErrUnexpectedEOF {
			if chunkOut {
				cc.out = append(cc.out, lastChunk...)
			}
			if _, err := cc.writeOut(); err != nil {
				return clientError{err}
			}
			bc.r, bc.w = 0, 1 // not reusable
			return nil
		}
		if err != nil {
			return err
		}
		rq.lease.Received(route.Now())
	}
}

// emit adds data to the output, framed as a chunk when chunkOut.
func (cc *clientConn) emit(data []byte, chunkOut bool) error {
	if chunkOut {
		cc.out = appendChunkHead(cc.out, len(data))
	}
	cc.out = append(cc.out, data...)
	if chunkOut {
		cc.out = append(cc.out, '\r', '\n')
	}
	if len(cc.out) >= flushAt {
		if _, err := cc.writeOut(); err != nil {
			return clientError{err}
		}
	}
	return nil
}

// streamBody sends the rest of a request body that was not held: a length
// (sent bytes of it went with the head) or chunks, which are framed anew.
func (cc *clientConn) streamBody(rq *request, bc *beConn, sent int) error {
	s := cc.s
	readBy(cc.conn(), &cc.rdl, time.Now().Add(s.o.IdleTimeout))
	if !rq.chunked {
		cc.r += sent
		left := rq.length - int64(sent)
		for left > 0 {
			if cc.r == cc.w {
				if err := cc.refill(); err != nil {
					return err
				}
			}
			take := min(int64(cc.w-cc.r), left)
			writeBy(bc.c, &bc.wdl, time.Now().Add(s.o.Timeout))
			if _, err := bc.c.Write(cc.rb[cc.r : cc.r+int(take)]); err != nil {
				return err
			}
			rq.lease.Sent(route.Now())
			cc.r += int(take)
			left -= take
		}
		return nil
	}
	ch := &rq.ch
	buf := cc.out[:0]
	for !ch.done() {
		for cc.r < cc.w && !ch.done() {
			used, data, err := ch.next(cc.rb[cc.r:cc.w])
			if err != nil {
				return clientError{err}
			}
			cc.r += used
			if len(data) > 0 {
				buf = appendChunkHead(buf, len(data))
				buf = append(buf, data...)
				buf = append(buf, '\r', '\n')
			}
		}
		if ch.done() {
			buf = append(buf, lastChunk...)
		}
		if len(buf) > 0 {
			writeBy(bc.c, &bc.wdl, time.Now().Add(s.o.Timeout))
			if _, err := bc.c.Write(buf); err != nil {
				cc.out = buf[:0]
				return err
			}
			rq.lease.Sent(route.Now())
			buf = buf[:0]
		}
		if ch.done() {
			break
		}
		if err := cc.refill(); err != nil {
			cc.out = buf[:0]
			return err
		}
	}
	cc.out = buf[:0]
	return nil
}

// refill reads more of a request body from the client into an empty
// buffer, which has IdleTimeout to send it.
func (cc *clientConn) refill() error {
	cc.r, cc.w = 0, 0
	readBy(cc.conn(), &cc.rdl, time.Now().Add(cc.s.o.IdleTimeout))
	n, err := cc.conn().Read(cc.rb)
	cc.w = n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return clientError{err}
}

// tunnel relays an upgraded connection (101) both ways until either side
// ends it. The lease is held meanwhile: the instance is not stopped under
// it before its stop timeout.
func (cc *clientConn) tunnel(rq *request, bc *beConn) int {
	s := cc.s
	s.table.Hold(&rq.lease)
	cc.out = cc.responseHead(rq, bc.rb[bc.r:], false, false)
	bc.r += rq.resp.size
	cc.out = append(cc.out, bc.rb[bc.r:bc.w]...)
	bc.r = bc.w
	// No deadline while it lasts: it ends when a side closes, or the
	// instance stops.
	bc.c.SetDeadline(time.Time{})
	c := cc.conn()
	c.SetDeadline(time.Time{})
	bc.rdl, bc.wdl, cc.rdl, cc.wdl = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if _, err := cc.writeOut(); err != nil {
		bc.close()
		return exBroken
	}
	cc.mu.Lock()
	cc.tunnelTo = bc.c
	killed := cc.killed
	cc.mu.Unlock()
	if killed {
		bc.close()
		return exBroken
	}
	// What the client sent after its request goes first.
	start := cc.r
	if !rq.streamed {
		start += cc.req.size + rq.raw
		rq.streamed = true // consumed here
	}
	rest := cc.rb[start:cc.w]
	cc.r = cc.w
	done := make(chan struct{})
	go func() {
		defer close(done)
		if len(rest) > 0 {
			if _, err := bc.c.Write(rest); err != nil {
				return
			}
		}
		io.Copy(bc.c, c)
		bc.c.CloseWrite()
	}()
	n, _ := io.Copy(c, bc.c)
	rq.bytes += n
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	<-done
	bc.close()
	return exDoneClose
}

// pick chooses the instance for rq: the one the client is stuck to (its
// cookie, or its address under ip-hash) while that one can take it, or one
// the balance picks, waiting up to QueueTimeout for one. It returns nil when
// none can be had. stuck reports that the client's own instance was taken.
func (cc *clientConn) pick(rq *request) (*backend, bool) {
	s := cc.s
	var id uint64
	switch {
	case s.o.StickyCookie != "":
		id = rq.cookieID
	case s.affinity != nil:
		id = s.affinity.get(cc.key)
	}
	if id != 0 {
		if b := s.stuckTarget(id); b != nil && !slices.Contains(rq.tried, b.t) {
			if b.stopping.Load() {
				rq.stopped = true
				return nil, true
			}
			return b, true
		}
	}
	t := s.table.Pick(cc.key, rq.tried)
	if t == nil {
		t = cc.wait(rq)
		if t == nil {
			return nil, false
		}
	}
	if s.affinity != nil {
		s.affinity.set(cc.key, t.ID)
	}
	return t.Data.(*backend), false
}

// wait parks the request in the table's queue until an instance can take
// it, QueueTimeout passes (nil), or every routable instance has failed it
// (nil).
func (cc *clientConn) wait(rq *request) *route.Target {
	s := cc.s
	if snap := s.table.Snapshot(); len(snap.Targets()) > 0 && snap.AllTried(rq.tried) {
		return nil
	}
	wake := make(chan struct{}, 1)
	w := &route.Waiter{Wake: func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}}
	timer := time.NewTimer(s.o.QueueTimeout)
	defer timer.Stop()
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	for {
		// In its place (behind those already waiting; by its ticket after
		// a wake-up that found no room), then a look that a change between
		// the pick and the push would otherwise hide.
		s.table.Queue.Push(w)
		if t := s.table.Pick(cc.key, rq.tried); t != nil {
			if s.table.Queue.Remove(w) {
				return t
			}
			<-wake
			return t
		}
		select {
		case <-wake:
		case <-timer.C:
			if s.table.Queue.Remove(w) {
				s.queueTimeouts.Add(1)
				if len(s.table.Snapshot().Targets()) == 0 {
					s.log.Printf("no instance became routable on %s within %v; answered 503", s.lnStr, s.o.QueueTimeout)
				} else {
					s.log.Printf("no instance on %s could take a request within %v (all at their limit); answered 503", s.lnStr, s.o.QueueTimeout)
				}
				return nil
			}
			<-wake
		case <-s.closing:
			s.table.Queue.Remove(w)
			return nil
		}
		if snap := s.table.Snapshot(); len(snap.Targets()) > 0 && snap.AllTried(rq.tried) {
			return nil
		}
		if t := s.table.Pick(cc.key, rq.tried); t != nil {
			return t
		}
		// Woken for room another took: back to its place.
	}
}

// stickyID reads the instance id from the client's sticky cookie, or 0.
func (cc *clientConn) stickyID() uint64 {
	h := &cc.req
	b := cc.rb[cc.r:]
	name := cc.s.o.StickyCookie
	for _, f := range h.fields {
		if !equalFold(f.name.of(b), "cookie") {
			continue
		}
		v := f.value.of(b)
		for len(v) > 0 {
			i := 0
			for i < len(v) && v[i] != ';' {
				i++
			}
			pair := v[:i]
			for len(pair) > 0 && pair[0] == ' ' {
				pair = pair[1:]
			}
			if len(pair) > len(name) && pair[len(name)] == '=' && string(pair[:len(name)]) == name {
				return parseSticky(pair[len(name)+1:])
			}
			if i == len(v) {
				break
			}
			v = v[i+1:]
		}
	}
	return 0
}

// parseSticky reads the instance id at the end of a sticky value,
// "APP.SLOT.ID"; 0 when it is not one.
func parseSticky(v []byte) uint64 {
	i := len(v)
	for i > 0 && v[i-1] >= '0' && v[i-1] <= '9' {
		i--
	}
	if i == len(v) || i == 0 || v[i-1] != '.' || len(v)-i > 18 {
		return 0
	}
	var id uint64
	for _, c := range v[i:] {
		id = id*10 + uint64(c-'0')
	}
	return id
}
