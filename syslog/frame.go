package syslog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/logmesh/logmesh/record"
)

// ErrFraming is wrapped by the error FrameReader.Next returns when octet
// counting is broken (a count of more than ten digits, or a stream that ends
// inside a counted frame): the reader cannot find the next frame, so the
// connection must be closed.
var ErrFraming = errors.New("syslog: broken octet-counted framing")

// DefaultMaxMessageBytes is the default size limit of one message.
const DefaultMaxMessageBytes = 64 << 10

const (
	// maxCountDigits bounds an octet count: 10 digits hold every count up
	// to 9,999,999,999 without overflow, and a longer count is rejected
	// before it is converted (rsyslog CVE-2022-24903).
	maxCountDigits = 10
	// readBufferBytes is the size of a connection's read buffer. A line
	// that does not fit is assembled in a second buffer that grows to at
	// most the message size limit.
	readBufferBytes = 32 << 10
)

// Frame is one message cut from a stream.
type Frame struct {
	// Data holds the message, at most the size limit; it is only valid
	// until the next call to Next.
	Data []byte
	// Truncated is set when the message was longer than the limit; Data
	// then holds its first bytes and the rest was discarded.
	Truncated bool
	// Reason is ReasonNone, or ReasonTruncated, ReasonEmpty (an empty
	// line), or ReasonFraming (the stream failed or ended inside the
	// frame: Data holds what was read).
	Reason record.Reason
	// Counted is set when the frame was octet counted, clear when it was a
	// newline-framed line.
	Counted bool
}

// FrameReader splits a stream into syslog messages (RFC 6587), choosing the
// framing per message:
//
//   - Octet counting: a frame that starts with a digit 1-9, then at most ten
//     digits in total, a space and '<' (the PRI of the message) is
//     "MSG-LEN SP MSG"; exactly MSG-LEN bytes follow. Requiring the '<'
//     keeps a plain line that starts with a number and a space
//     ("1700000000 boot") from being read as a count that would swallow the
//     lines after it; a sender that counts octets always sends a PRI. The count is compared with the limit before anything is
//     allocated. A longer message is delivered truncated to the limit and its
//     remainder is skipped without being buffered, which keeps the stream in
//     sync. More than ten digits before the space, or a stream that ends
//     inside a counted frame, make a frame with ReasonFraming of what was
//     read (the digits, or the partial message), followed by an error
//     wrapping ErrFraming.
//   - Newline framing, for every other frame, including one that starts with
//     "0" (RFC 6587's MSG-LEN has no leading zero, so "0 " and "05 hello"
//     are lines), with digits not followed by a space ("4\x00  ",
//     "12<34>x"), or with digits and a space but no '<' ("12 hello"): the message runs to the next LF, and one CR right before
//     the LF is dropped. A longer line is delivered truncated and the rest is
//     discarded up to and including its LF without being buffered. An empty
//     line is delivered as a frame with ReasonEmpty so callers can count it.
//     A last line without LF is an ordinary line.
//
// NUL and every other byte are ordinary data in both framings.
//
// The caveat of per-message detection: a newline-framed line that starts
// with digits, a space and '<' ("12 <not a count") is read as an octet count.
//
// Memory is bounded by the read buffer (32 KiB unless Resize changes it) plus one frame buffer that
// grows to at most the limit + 1 bytes.
//
// A FrameReader is not safe for concurrent use.
type FrameReader struct {
	src io.Reader
	br  *bufio.Reader
	max int
	// buf assembles a frame that is not contiguous in br's buffer.
	buf []byte

	skip     int64 // bytes of an oversized counted frame still to discard
	skipLine bool  // discarding an oversized line up to its LF
	skipCR   bool  // the last byte discarded was a CR (not content if an LF follows)

	err     error // returned by every later call
	peekErr error // a read error met while looking for an octet count

	discarded int64
	inFrame   bool   // inside Next with bytes of a frame consumed or pending
	frames    uint64 // frames begun, so a caller can tell one from the next
}

// NewFrameReader returns a FrameReader over r that delivers messages of at
// most maxMessageBytes bytes (DefaultMaxMessageBytes if it is not positive).
func NewFrameReader(r io.Reader, maxMessageBytes int) *FrameReader {
	if maxMessageBytes <= 0 {
		maxMessageBytes = DefaultMaxMessageBytes
	}
	return &FrameReader{src: r, br: bufio.NewReaderSize(r, readBufferBytes), max: maxMessageBytes}
}

// BufferSize returns the size of the read buffer.
func (fr *FrameReader) BufferSize() int { return fr.br.Size() }

// Resize gives the reader a read buffer of size bytes (at least 16). The
// bytes buffered but not yet delivered are read first from the new buffer,
// so nothing is lost or reordered. Frame data returned by Next is invalid
// afterwards, as after the next call to Next.
func (fr *FrameReader) Resize(size int) {
	if size == fr.br.Size() {
		return
	}
	if n := fr.br.Buffered(); n > 0 {
		// the buffered bytes come before whatever src still holds (which
		// may be the rest of an earlier Resize's carry)
		rest, _ := fr.br.Peek(n)
		fr.src = io.MultiReader(bytes.NewReader(bytes.Clone(rest)), fr.src)
	}
	fr.br = bufio.NewReaderSize(fr.src, size)
}

// Next returns the next frame. At the end of the stream it returns io.EOF;
// after broken octet framing an error wrapping ErrFraming; after a read error
// that error (a frame holding the bytes read before it, with ReasonFraming,
// comes first). Every call after an error returns the same error.
func (fr *FrameReader) Next() (Frame, error) {
	if fr.err != nil {
		return Frame{}, fr.err
	}
	defer func() { fr.inFrame = false }()
	if fr.skip > 0 || fr.skipLine {
		if err := fr.discard(); err != nil {
			fr.err = err
			return Frame{}, err
		}
	}
	b, err := fr.br.Peek(1)
	if len(b) == 0 {
		fr.err = err
		return Frame{}, err
	}
	fr.inFrame = true
	fr.frames++
	if c := b[0]; c >= '1' && c <= '9' {
		if f, ok := fr.counted(); ok {
			return f, nil
		}
	}
	return fr.line(), nil
}

// Discarded returns the number of message bytes dropped so far because their
// messages exceeded the limit (LF, the CR before it and octet counts are
// framing, not message bytes).
func (fr *FrameReader) Discarded() int64 { return fr.discarded }

// midFrame reports whether a frame has begun and is not complete: bytes of it
// were read or are buffered. A read made now waits for the rest of a frame,
// not for a new one.
func (fr *FrameReader) midFrame() bool { return fr.inFrame || fr.br.Buffered() > 0 }

// counted reads an octet-counted frame; ok is false when the frame does not
// start with a count and a space.
func (fr *FrameReader) counted() (f Frame, ok bool) {
	var n int64
	digits := 0
	for {
		b, err := fr.br.Peek(digits + 1)
		if len(b) <= digits {
			// The stream ended, failed or filled the buffer inside the
			// digits: not a count. Keep a read error for line, so it
			// does not read again.
			if err != nil && err != bufio.ErrBufferFull {
				fr.peekErr = err
			}
			return Frame{}, false
		}
		c := b[digits]
		if c == ' ' {
			// A count must be followed by a message that starts with a
			// PRI: a newline-framed line such as "1700000000 boot" is not
			// misread as a count that would swallow the lines after it.
			b, err := fr.br.Peek(digits + 2)
			if len(b) < digits+2 {
				if err != nil && err != bufio.ErrBufferFull {
					fr.peekErr = err
				}
				return Frame{}, false
			}
			if b[digits+1] != '<' {
				return Frame{}, false
			}
			break
		}
		if !isDigit(c) {
			return Frame{}, false
		}
		if digits < maxCountDigits {
			n = n*10 + int64(c-'0')
		}
		digits++
	}
	if digits > maxCountDigits {
		b, _ := fr.br.Peek(digits)
		keep := min(digits, fr.max)
		fr.buf = append(fr.buf[:0], b[:keep]...)
		fr.discarded += int64(digits - keep)
		fr.mustDiscard(digits + 1)
		fr.err = fmt.Errorf("%w: octet count of %d digits (at most %d)", ErrFraming, digits, maxCountDigits)
		return Frame{Data: fr.buf, Truncated: digits > keep, Reason: record.ReasonFraming, Counted: true}, true
	}
	fr.mustDiscard(digits + 1)
	f = fr.readCounted(n)
	f.Counted = true
	return f, true
}

// readCounted reads the n bytes of a counted frame whose header was consumed.
func (fr *FrameReader) readCounted(n int64) Frame {
	want := int(min(n, int64(fr.max)))
	fr.ensure(want)
	buf := fr.buf[:want]
	got, err := io.ReadFull(fr.br, buf)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = fmt.Errorf("%w: stream ended after %d of %d bytes of an octet-counted frame: %w",
				ErrFraming, got, n, io.ErrUnexpectedEOF)
		}
		fr.err = err
		return Frame{Data: buf[:got], Reason: record.ReasonFraming}
	}
	if n > int64(want) {
		fr.skip = n - int64(want)
		return Frame{Data: buf, Truncated: true, Reason: record.ReasonTruncated}
	}
	return Frame{Data: buf}
}

// line reads a newline-framed frame.
func (fr *FrameReader) line() Frame {
	fr.buf = fr.buf[:0]
	total := 0    // content bytes consumed so far (the LF excluded)
	var last byte // the last of them
	for {
		chunk, err := fr.readSlice()
		if err == nil && total == 0 {
			// The whole line is in the read buffer: no copy.
			line := chunk[:len(chunk)-1]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return fr.deliver(line, len(line))
		}
		body := chunk
		if err == nil {
			body = chunk[:len(chunk)-1]
		}
		if room := fr.max + 1 - len(fr.buf); room > 0 {
			keep := body[:min(room, len(body))]
			fr.ensure(len(fr.buf) + len(keep))
			fr.buf = append(fr.buf, keep...)
		}
		total += len(body)
		if len(body) > 0 {
			last = body[len(body)-1]
		}
		switch {
		case err == nil:
			content := total
			if last == '\r' {
				content--
			}
			return fr.deliver(fr.buf, content)
		case err == bufio.ErrBufferFull:
			if total >= fr.max+2 {
				// Too long whatever follows: deliver now, drop the
				// rest up to the LF on the next call.
				fr.skipLine, fr.skipCR = true, last == '\r'
				fr.discarded += int64(total - fr.max)
				return Frame{Data: fr.buf[:fr.max], Truncated: true, Reason: record.ReasonTruncated}
			}
		case err == io.EOF:
			return fr.deliver(fr.buf, total) // a last line without LF
		default:
			fr.err = err
			f := fr.deliver(fr.buf, total)
			f.Reason = record.ReasonFraming
			return f
		}
	}
}

// readSlice is br.ReadSlice('\n'), except that a read error met by counted
// is returned with the bytes it left buffered (digits, no LF).
func (fr *FrameReader) readSlice() ([]byte, error) {
	if err := fr.peekErr; err != nil {
		fr.peekErr = nil
		b, _ := fr.br.Peek(fr.br.Buffered())
		fr.mustDiscard(len(b))
		return b, err
	}
	return fr.br.ReadSlice('\n')
}

// deliver makes the frame of a line whose first bytes are in data and whose
// content is n bytes long.
func (fr *FrameReader) deliver(data []byte, n int) Frame {
	switch {
	case n == 0:
		return Frame{Data: data[:0], Reason: record.ReasonEmpty}
	case n > fr.max:
		fr.discarded += int64(n - fr.max)
		return Frame{Data: data[:fr.max], Truncated: true, Reason: record.ReasonTruncated}
	}
	return Frame{Data: data[:n]}
}

// discard drops the remainder of an oversized message.
func (fr *FrameReader) discard() error {
	fr.inFrame = true
	for fr.skip > 0 {
		n, err := fr.br.Discard(int(min(fr.skip, 1<<30)))
		fr.skip -= int64(n)
		fr.discarded += int64(n)
		if err == io.EOF {
			return fmt.Errorf("%w: stream ended %d bytes before the end of an octet-counted frame: %w",
				ErrFraming, fr.skip, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return err
		}
	}
	for fr.skipLine {
		chunk, err := fr.br.ReadSlice('\n')
		body := chunk
		if err == nil {
			body = chunk[:len(chunk)-1]
		}
		fr.discarded += int64(len(body))
		if len(body) > 0 {
			fr.skipCR = body[len(body)-1] == '\r'
		}
		switch {
		case err == nil:
			if fr.skipCR {
				fr.discarded-- // the CR before the LF is framing
			}
			fr.skipLine = false
		case err != bufio.ErrBufferFull:
			fr.skipLine = false
			return err // io.EOF: the long line was the last one
		}
	}
	return nil
}

// ensure grows buf's capacity to at least n bytes (n <= max+1): first to a
// small size, then straight to the limit, so assembling the longest frame
// allocates little more than the limit in total.
func (fr *FrameReader) ensure(n int) {
	if cap(fr.buf) >= n {
		return
	}
	c := 2 * readBufferBytes
	if cap(fr.buf) >= c {
		c = fr.max + 1
	}
	c = min(max(c, n), fr.max+1)
	b := make([]byte, len(fr.buf), c)
	copy(b, fr.buf)
	fr.buf = b
}

// mustDiscard drops n bytes known to be buffered.
func (fr *FrameReader) mustDiscard(n int) {
	if d, err := fr.br.Discard(n); err != nil || d != n {
		panic(fmt.Sprintf("BUG: syslog: discarding %d buffered bytes: %d, %v", n, d, err))
	}
}
