// Package wire is logmesh's peer-to-peer data format: a versioned stream of
// typed, length-prefixed frames carrying encoded records. Replication pushes,
// query fan-out and anti-entropy repair all move records in it (over HTTP on
// the API port). Gossip never carries records.
//
// A stream is a 3-byte header ("LM" and the version), then frames:
//
//	'R' id(16) uvarint(len) data     a record (data is record.AppendEncode output)
//	'E' uvarint(len) text            the sender failed; the stream ends
//	'T' uvarint(len) text            the end of a complete stream, with a trailer
//
// A stream that ends without 'T' was cut short.
package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/logmesh/logmesh/record"
)

// ContentType is the media type of a stream.
const ContentType = "application/x-logmesh-records"

// Version is the stream format version this peer writes and reads.
const Version = 1

// Frame kinds.
const (
	KindRecord  = 'R'
	KindError   = 'E'
	KindTrailer = 'T'
)

// Limits a Reader enforces before it allocates.
const (
	// MaxRecordBytes bounds one record's encoding.
	MaxRecordBytes = 16 << 20
	// MaxTextBytes bounds error and trailer texts.
	MaxTextBytes = 64 << 10
)

// Errors.
var (
	ErrBadHeader  = errors.New("wire: not a logmesh record stream")
	ErrVersion    = errors.New("wire: unsupported stream version")
	ErrCorrupt    = errors.New("wire: corrupt frame")
	ErrIncomplete = errors.New("wire: stream ended before its trailer")
)

// Writer writes a stream.
type Writer struct {
	bw  *bufio.Writer
	buf []byte
}

// NewWriter writes the stream header to w.
func NewWriter(w io.Writer) (*Writer, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.Write([]byte{'L', 'M', Version}); err != nil {
		return nil, err
	}
	return &Writer{bw: bw}, nil
}

// Record writes one record frame.
func (w *Writer) Record(id record.ID, data []byte) error {
	w.buf = append(w.buf[:0], KindRecord)
	w.buf = append(w.buf, id[:]...)
	w.buf = binary.AppendUvarint(w.buf, uint64(len(data)))
	if _, err := w.bw.Write(w.buf); err != nil {
		return err
	}
	_, err := w.bw.Write(data)
	return err
}

// Error writes an error frame and flushes; nothing may follow.
func (w *Writer) Error(msg string) error { return w.text(KindError, msg) }

// End writes the trailer frame and flushes; nothing may follow.
func (w *Writer) End(trailer string) error { return w.text(KindTrailer, trailer) }

func (w *Writer) text(kind byte, s string) error {
	if len(s) > MaxTextBytes {
		s = s[:MaxTextBytes]
	}
	w.buf = append(w.buf[:0], kind)
	w.buf = binary.AppendUvarint(w.buf, uint64(len(s)))
	w.buf = append(w.buf, s...)
	if _, err := w.bw.Write(w.buf); err != nil {
		return err
	}
	return w.bw.Flush()
}

// Flush sends what is buffered.
func (w *Writer) Flush() error { return w.bw.Flush() }

// Frame is one frame read from a stream.
type Frame struct {
	Kind byte
	ID   record.ID
	// Data is the record's encoding, or the error or trailer text. It is
	// valid until the next call to Next.
	Data []byte
}

// Reader reads a stream.
type Reader struct {
	br   *bufio.Reader
	buf  []byte
	done bool
}

// NewReader reads and checks the stream header.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var h [3]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	if h[0] != 'L' || h[1] != 'M' {
		return nil, ErrBadHeader
	}
	if h[2] != Version {
		return nil, fmt.Errorf("%w %d (this peer speaks %d)", ErrVersion, h[2], Version)
	}
	return &Reader{br: br}, nil
}

// Next returns the next frame. After an error or trailer frame it returns
// io.EOF; a stream that ends without either returns ErrIncomplete.
func (r *Reader) Next() (Frame, error) {
	if r.done {
		return Frame{}, io.EOF
	}
	kind, err := r.br.ReadByte()
	if err == io.EOF {
		return Frame{}, ErrIncomplete
	}
	if err != nil {
		return Frame{}, err
	}
	f := Frame{Kind: kind}
	switch kind {
	case KindRecord:
		if _, err := io.ReadFull(r.br, f.ID[:]); err != nil {
			return f, incomplete(err)
		}
		if f.Data, err = r.bytes(MaxRecordBytes); err != nil {
			return f, err
		}
	case KindError, KindTrailer:
		if f.Data, err = r.bytes(MaxTextBytes); err != nil {
			return f, err
		}
		r.done = true
	default:
		return f, fmt.Errorf("%w: unknown kind %q", ErrCorrupt, kind)
	}
	return f, nil
}

func (r *Reader) bytes(max uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(r.br)
	if err != nil {
		return nil, incomplete(err)
	}
	if n > max {
		return nil, fmt.Errorf("%w: frame of %d bytes (at most %d)", ErrCorrupt, n, max)
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	if _, err := io.ReadFull(r.br, r.buf); err != nil {
		return nil, incomplete(err)
	}
	return r.buf, nil
}

func incomplete(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return ErrIncomplete
	}
	return err
}
