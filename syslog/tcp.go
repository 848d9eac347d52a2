package syslog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/logmesh/logmesh/record"
)

// endConn counts and logs why a connection ended.
func (s *Server) endConn(t *tcpConn, err error) {
	tr := t.transport
	switch {
	case err == io.EOF:
	case errors.Is(err, errSink):
		s.warnf("sink", "closing connection: cannot store its records", "transport", tr, "remote", t.source, "err", err)
	case errors.Is(err, ErrFraming):
		t.stats.framingErrors.Add(1)
		s.warnf("framing", "closing connection: broken octet framing", "transport", tr, "remote", t.source, "err", err)
	case errors.Is(err, os.ErrDeadlineExceeded) && t.frameTimedOut:
		t.stats.frameTimeouts.Add(1)
		s.warnf("frame-timeout", "closing connection: message not complete within FrameTimeout",
			"transport", tr, "remote", t.source, "frame_timeout", s.cfg.FrameTimeout)
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.stats.idleTimeouts.Add(1)
		s.log.Debug("closing idle connection", "transport", tr, "remote", t.source, "idle_timeout", s.cfg.IdleTimeout)
	case s.ctx.Err() != nil:
	default:
		s.log.Debug("connection ended", "transport", tr, "remote", t.source, "err", err)
	}
}

// errSink marks the error of a connection whose records could not be stored.
var errSink = errors.New("syslog: sink failed")

// reuseRawBytes bounds the raw buffer a reused record keeps.
const reuseRawBytes = 2 << 10

// tcpConn is one TCP or TLS connection. It is the io.Reader under the
// FrameReader: every read first hands the pending batch to the sink (so a
// record never waits for more input) and sets the read deadline.
type tcpConn struct {
	s         *Server
	c         net.Conn // what is read: raw, or the TLS connection over it
	raw       net.Conn
	transport record.Transport
	stats     *counters
	source    string
	parser    *Parser
	fr        *FrameReader
	batch     []*record.Record
	// inflight receives the result of the batch handed to the sink and not
	// yet acknowledged (nil when none); spare is the batch slice it holds.
	inflight chan error
	spare    []*record.Record
	// free holds records of acknowledged batches, for reuse.
	free []*record.Record
	// sinkErr is set once Ingest failed; the connection then ends.
	sinkErr error

	// full counts reads in a row that filled the read buffer, quiet reads
	// in a row that filled less than an eighth of it; big is set while the
	// connection holds one of the server's large read buffers.
	full, quiet int
	big         bool

	discarded     int64     // fr.Discarded() already counted
	frameSeq      uint64    // the frame frameStart belongs to
	frameStart    time.Time // when its first bytes arrived (at the latest)
	lastRead      time.Time // when the last read returned bytes
	deadline      time.Time // the read deadline set on c
	frameTimedOut bool      // the deadline set is the frame's, not the idle one
}

// run reads frames until the stream ends or fails, then stores what was read.
// The FrameReader, and its read buffer, are made when the first byte
// arrives: an idle connection holds no buffer.
func (t *tcpConn) run() error {
	var first [1]byte
	for {
		n, err := t.Read(first[:])
		if n > 0 {
			break
		}
		if err != nil {
			return err
		}
	}
	t.fr = NewFrameReader(io.MultiReader(bytes.NewReader(first[:]), t), t.s.cfg.MaxMessageBytes)
	t.full, t.quiet = 0, 0 // the one-byte read above says nothing of a backlog
	for {
		f, err := t.fr.Next()
		t.countDiscarded()
		if t.sinkErr != nil {
			return t.sinkErr
		}
		if err != nil {
			if ferr := t.flush(); ferr != nil {
				return ferr
			}
			if ferr := t.waitInflight(); ferr != nil {
				return ferr
			}
			return err
		}
		t.add(f)
		t.sizeBuffer()
		if len(t.batch) >= t.s.cfg.MaxBatch {
			if err := t.flush(); err != nil {
				return err
			}
		}
	}
}

// Read buffers. A connection starts with a small one; one whose reads keep
// filling it (a sender with a backlog) gets a large one, which makes its
// batches, and the store's commits, larger: with 4 connections streaming
// ~200-byte lines this took 1.14× the rate for 0.88× the CPU per line
// (logmesh bench --compare, 4 rounds). The large buffers are shared out
// among at most maxBigBuffers connections, so memory stays bounded whatever
// the number of connections. A connection gives its buffer back after
// shrinkAfterQuiet small reads in a row, or when it closes: one that drains
// its backlog and then falls silent keeps it until it sends again or
// IdleTimeout closes it, and while 64 such connections hold the large
// buffers the others read 32 KiB at a time. TLS connections never grow: a
// TLS read brings at most one 16 KiB record, so it never fills the buffer.
const (
	bigReadBufferBytes = 256 << 10
	maxBigBuffers      = 64 // 16 MiB in all
	growAfterFullReads = 2
	shrinkAfterQuiet   = 32
)

// sizeBuffer grows or shrinks the read buffer per the recent reads.
func (t *tcpConn) sizeBuffer() {
	switch {
	case !t.big && t.full >= growAfterFullReads:
		t.full = 0
		if t.s.bigBuffers.Add(1) > t.s.maxBig {
			t.s.bigBuffers.Add(-1)
			return
		}
		t.big = true
		t.fr.Resize(bigReadBufferBytes)
	case t.big && t.quiet >= shrinkAfterQuiet:
		t.quiet = 0
		t.releaseBuffer()
		t.fr.Resize(readBufferBytes)
	}
}

// releaseBuffer gives a large read buffer back to the server.
func (t *tcpConn) releaseBuffer() {
	if t.big {
		t.big = false
		t.s.bigBuffers.Add(-1)
	}
}

// add turns a frame into a record in the batch.
func (t *tcpConn) add(f Frame) {
	stats := t.stats
	data := trimTrailer(f.Data)
	if len(data) == 0 {
		reason := f.Reason
		if reason == record.ReasonNone || reason == record.ReasonTruncated {
			reason = record.ReasonEmpty
		}
		stats.received(reason, f.Truncated, false)
		return
	}
	var r *record.Record
	if n := len(t.free); n > 0 {
		r, t.free = t.free[n-1], t.free[:n-1]
	} else {
		r = new(record.Record)
	}
	t.s.fillRecord(r, t.parser, data, t.transport, t.source)
	applyFrame(r, f)
	if t.transport == record.TransportTLS && !f.Counted && r.Reason != record.ReasonFraming {
		// RFC 5425 requires octet counting: keep the message, but flag it
		// so the sender's configuration gets fixed.
		r.Flags |= record.FlagParseError
		r.Reason = record.ReasonFraming
		stats.lineFrames.Add(1)
	}
	stats.received(r.Reason, f.Truncated, true)
	t.batch = append(t.batch, r)
}

// applyFrame records on r what the transport did to its message; transport
// reasons take precedence over parse reasons.
func applyFrame(r *record.Record, f Frame) {
	if f.Truncated {
		r.Flags |= record.FlagTruncated
		r.Reason = record.ReasonTruncated
	}
	if f.Reason == record.ReasonFraming {
		r.Flags |= record.FlagParseError
		r.Reason = record.ReasonFraming
	}
}

func (t *tcpConn) countDiscarded() {
	if d := t.fr.Discarded(); d > t.discarded {
		t.stats.discardedBytes.Add(uint64(d - t.discarded))
		t.discarded = d
	}
}

// flush hands the batch to the sink without waiting for it to be stored, so
// the connection parses its next batch while the last one is committed. At
// most one batch is in flight per connection: flush first waits for the
// previous one, which keeps the backpressure on the sender.
func (t *tcpConn) flush() error {
	if err := t.waitInflight(); err != nil || len(t.batch) == 0 {
		return err
	}
	batch := t.batch
	t.batch, t.spare = t.spare[:0], nil
	if t.batch == nil {
		t.batch = make([]*record.Record, 0, cap(batch))
	}
	done := make(chan error, 1)
	t.inflight = done
	t.spare = batch
	t.s.wg.Add(1)
	go func() {
		defer t.s.wg.Done()
		err := t.s.sink.Ingest(t.s.ctx, batch)
		if err != nil {
			// The connection ends: do not let it wait for the sender.
			t.raw.Close()
		} else {
			// counted now, not when the next batch or the close comes: a
			// sender that keeps its connection open (rsyslog does) would
			// otherwise always see one batch missing from the counters
			t.stats.stored(batch)
		}
		done <- err
	}()
	return nil
}

// waitInflight waits for the batch in flight, if any, and counts its outcome.
func (t *tcpConn) waitInflight() error {
	if t.inflight == nil {
		return t.sinkErr
	}
	err := <-t.inflight
	t.inflight = nil
	stats := t.stats
	if err != nil {
		stats.sinkErrors.Add(1)
		stats.dropped.Add(uint64(len(t.spare)))
		t.sinkErr = fmt.Errorf("%w: storing %d records from %s: %w", errSink, len(t.spare), t.source, err)
	}
	for _, r := range t.spare { // the sink is done with them: reuse
		raw := r.Raw[:0]
		if cap(raw) > reuseRawBytes {
			raw = nil // keep reused records small
		}
		*r = record.Record{Raw: raw}
		t.free = append(t.free, r)
	}
	clear(t.spare)
	t.spare = t.spare[:0]
	return t.sinkErr
}

// Read reads from the connection for the FrameReader. Before it may block it
// flushes the batch, then sets the deadline: IdleTimeout from now while
// waiting for a new message, also FrameTimeout from the message's first
// bytes while waiting for the rest of one.
func (t *tcpConn) Read(p []byte) (int, error) {
	flushed := len(t.batch) > 0 || t.inflight != nil
	if err := t.flush(); err != nil {
		return 0, err
	}
	cfg := &t.s.cfg
	now := t.s.now()
	deadline := now.Add(cfg.IdleTimeout)
	t.frameTimedOut = false
	if t.fr != nil && t.fr.midFrame() {
		if t.frameSeq != t.fr.frames || flushed {
			// A new frame began with the bytes of the last read, or the
			// sink took its time: the sender is not to blame for that.
			t.frameSeq, t.frameStart = t.fr.frames, t.lastRead
			if flushed {
				t.frameStart = now
			}
		}
		if fd := t.frameStart.Add(cfg.FrameTimeout); fd.Before(deadline) {
			deadline, t.frameTimedOut = fd, true
		}
	}
	if !deadline.Equal(t.deadline) {
		if err := t.c.SetReadDeadline(deadline); err != nil {
			return 0, err
		}
		t.deadline = deadline
	}
	n, err := t.c.Read(p)
	if n > 0 {
		t.lastRead = t.s.now()
	}
	switch {
	case n == len(p):
		t.full++
		t.quiet = 0
	case n < len(p)/8:
		t.quiet++
		t.full = 0
	default:
		t.full, t.quiet = 0, 0
	}
	return n, err
}
