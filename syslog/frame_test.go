package syslog

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/logmesh/logmesh/record"
)

// frameOut is a frame as a test sees it.
type frameOut struct {
	data      string
	truncated bool
	reason    record.Reason
}

func (f frameOut) String() string {
	s := fmt.Sprintf("%q", f.data)
	if f.truncated {
		s += " truncated"
	}
	if f.reason != record.ReasonNone {
		s += " " + f.reason.String()
	}
	return s
}

// readFrames reads r to the end: the frames, the final error, the bytes
// discarded.
func readFrames(r io.Reader, max int) ([]frameOut, error, int64) {
	fr := NewFrameReader(r, max)
	var out []frameOut
	for {
		f, err := fr.Next()
		if err != nil {
			if len(f.Data) != 0 || f.Truncated || f.Reason != record.ReasonNone {
				panic("BUG: a frame with an error")
			}
			if _, err2 := fr.Next(); err2 != err {
				panic(fmt.Sprintf("BUG: error not sticky: %v then %v", err, err2))
			}
			return out, err, fr.Discarded()
		}
		out = append(out, frameOut{string(f.Data), f.Truncated, f.Reason})
	}
}

func line(s string) frameOut      { return frameOut{data: s} }
func truncated(s string) frameOut { return frameOut{s, true, record.ReasonTruncated} }
func broken(s string) frameOut    { return frameOut{data: s, reason: record.ReasonFraming} }

var empty = frameOut{reason: record.ReasonEmpty}

func TestFrameReader(t *testing.T) {
	// f checks the frames of in, read whole and one byte at a time; wantErr
	// nil means io.EOF.
	f := func(in string, max int, wantErr error, want ...frameOut) {
		t.Helper()
		for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in))} {
			got, err, _ := readFrames(r, max)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("frames of %q (max %d, %T)\n got %v\nwant %v", in, max, r, got, want)
			}
			if wantErr == nil && err != io.EOF || wantErr != nil && !errors.Is(err, wantErr) {
				t.Errorf("frames of %q: error %v, want %v", in, err, wantErr)
			}
		}
	}
	// Both framings, mixed on one stream, chosen per message.
	f("5 <1>hi<34>x\n11 <1>hi world<13>last", 100, nil, line("<1>hi"), line("<34>x"), line("<1>hi world"), line("<13>last"))
	f("6 <1>a\nb\n", 100, nil, line("<1>a\nb"), empty) // an LF inside a counted frame is data
	// A number and a space without a PRI after it is a line, not a count
	// that would swallow what follows.
	f("1700000000 boot\nnext\n12 hello\n", 100, nil, line("1700000000 boot"), line("next"), line("12 hello"))
	f("5 ", 100, nil, line("5 "))
	// CR LF; a CR elsewhere is data; empty lines.
	f("a\r\nb\n\r\n\nc\r\r\nd\r", 100, nil, line("a"), line("b"), empty, empty, line("c\r"), line("d\r"))
	// NUL is data; "4\x00  " (syslog-ng 3.27 crashed on it) is a line.
	f("4\x00  \n\x00\x00\n<13>a\x00b\n", 100, nil, line("4\x00  "), line("\x00\x00"), line("<13>a\x00b"))
	// Digits without a space after them: newline framing.
	f("12<34>x\n123\n99", 100, nil, line("12<34>x"), line("123"), line("99"))
	// Leading zero: not a count (RFC 6587 MSG-LEN starts with 1-9).
	f("0 \n05 hello\n0\n", 100, nil, line("0 "), line("05 hello"), line("0"))
	// The count larger than the data, then EOF.
	f("<1>a\n10 <1>hello", 100, ErrFraming, line("<1>a"), broken("<1>hello"))
	f("5 <", 100, ErrFraming, broken("<"))
	// 11 and 20 digits: rejected before conversion.
	f("<1>a\n12345678901234567890 <13>x\n<13>y\n", 100, ErrFraming, line("<1>a"), broken("12345678901234567890"))
	f("99999999999 <x", 100, ErrFraming, broken("99999999999"))
	f("99999999999 x", 100, nil, line("99999999999 x"))
	// Ten digits are a count: far above the limit, truncated, then the
	// stream ends while the rest is skipped.
	f("9999999999 <bcdefgh", 4, ErrFraming, truncated("<bcd"))
	// A count above the limit: truncated, the rest skipped, in sync after.
	f("8 <bcdefgh5 <ello", 5, nil, truncated("<bcde"), line("<ello"))
	// Lines above the limit: truncated, discarded up to the LF.
	f("abcdefgh\nxy\nabcd\r\nabcde\r\n", 4, nil, truncated("abcd"), line("xy"), line("abcd"), truncated("abcd"))
	f("abcd\r", 4, nil, truncated("abcd")) // the CR is data without an LF after it
	f("abcdefgh", 4, nil, truncated("abcd"))
	f("", 4, nil)
}

func TestFrameReaderDiscarded(t *testing.T) {
	f := func(in string, max int, want int64) {
		t.Helper()
		if _, _, got := readFrames(strings.NewReader(in), max); got != want {
			t.Errorf("discarded of %q (max %d) = %d, want %d", in, max, got, want)
		}
	}
	f("abcdefgh\n", 4, 4)
	f("abcdefgh\r\n", 4, 4)
	f("abcdefgh\r", 4, 5)
	f("8 <bcdefgh", 4, 4)
	f("9 <bcdefgh", 4, 4) // ends early: what arrived
	f(strings.Repeat("x", 3*readBufferBytes+1)+"\r\nok\n", 10, 3*readBufferBytes+1-10)
}

// errReader returns data, then err.
type errReader struct {
	data string
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestFrameReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	f := func(in string, max int, want ...frameOut) {
		t.Helper()
		got, err, _ := readFrames(&errReader{in, boom}, max)
		if fmt.Sprint(got) != fmt.Sprint(want) || err != boom {
			t.Errorf("frames of %q then an error\n got %v, %v\nwant %v, boom", in, got, err, want)
		}
	}
	// What was read of the frame the error interrupts is delivered.
	f("a\nhalf a line", 100, line("a"), broken("half a line"))
	f("10 <1>hello", 100, broken("<1>hello"))
	f("123", 100, broken("123"))
	f("abcdefgh", 4, frameOut{"abcd", true, record.ReasonFraming})
	f("8 <bcdefgh", 4, truncated("<bcd")) // the error comes while skipping
	f("a\n", 100, line("a"))
}

// repeatReader returns n bytes of c.
type repeatReader struct {
	c byte
	n int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n)]
	for i := range p {
		p[i] = r.c
	}
	r.n -= int64(len(p))
	return len(p), nil
}

// TestFrameReaderLongLines reads lines of 1 MiB and 64 MiB without an LF and
// checks that memory stays bounded by the limit, not by the line.
func TestFrameReaderLongLines(t *testing.T) {
	const max = 64 << 10
	for _, size := range []int64{1 << 20, 64 << 20} {
		t.Run(fmt.Sprint(size>>20, "MiB"), func(t *testing.T) {
			in := io.MultiReader(&repeatReader{'x', size}, strings.NewReader("\n<13>next\n"), &repeatReader{'y', size})
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			fr := NewFrameReader(in, max)
			var frames []frameOut
			for {
				f, err := fr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				frames = append(frames, frameOut{string(f.Data[:min(len(f.Data), 8)]), f.Truncated, f.Reason})
				if len(f.Data) > max {
					t.Fatalf("frame of %d bytes, limit %d", len(f.Data), max)
				}
			}
			runtime.ReadMemStats(&after)
			want := []frameOut{truncated("xxxxxxxx"), line("<13>next"), truncated("yyyyyyyy")}
			if fmt.Sprint(frames) != fmt.Sprint(want) {
				t.Errorf("frames %v, want %v", frames, want)
			}
			if d := fr.Discarded(); d != 2*(size-max) {
				t.Errorf("discarded %d, want %d", d, 2*(size-max))
			}
			// The frame buffer (limit + 1), the read buffer, the test's
			// own small allocations.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > max+max/2+readBufferBytes+64<<10 {
				t.Errorf("allocated %d bytes for a %d byte line, limit %d", alloc, size, max)
			}
		})
	}
}

func TestFrameReaderCountNotAllocated(t *testing.T) {
	// A count of nearly 10 GB must not allocate more than the limit.
	// TotalAlloc counts the whole process, so a goroutine another test left
	// finishing can add to one measurement; the reader's own allocation is
	// the same every time, so the least of a few measurements is its own.
	in := "9999999999 " + strings.Repeat("z", 100)
	least := uint64(math.MaxUint64)
	for range 5 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		fr := NewFrameReader(strings.NewReader(in), 64)
		for {
			if _, err := fr.Next(); err != nil {
				break
			}
		}
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	if least > readBufferBytes+4<<10 {
		t.Errorf("allocated %d bytes", least)
	}
}

func TestFrameReaderOneByte(t *testing.T) {
	// Every split of the stream gives the same frames.
	in := "5 <1>hi<34>x\r\n" + strings.Repeat("long", 40) + "\n12345 \n0 \n\n4 <bc\x00\n9 <short"
	whole, werr, wd := readFrames(strings.NewReader(in), 50)
	for name, r := range map[string]io.Reader{
		"one byte": iotest.OneByteReader(strings.NewReader(in)),
		"half":     iotest.HalfReader(strings.NewReader(in)),
		"data+err": iotest.DataErrReader(strings.NewReader(in)),
	} {
		got, err, d := readFrames(r, 50)
		if fmt.Sprint(got) != fmt.Sprint(whole) || !errors.Is(err, ErrFraming) || !errors.Is(werr, ErrFraming) || d != wd {
			t.Errorf("%s: %v, %v, %d\nwhole: %v, %v, %d", name, got, err, d, whole, werr, wd)
		}
	}
}

func TestFrameReaderZeroCopy(t *testing.T) {
	in := strings.Repeat("<13>Oct 11 22:14:15 host app: a line of text\n", 1000)
	fr := NewFrameReader(strings.NewReader(in), 1024)
	n := testing.AllocsPerRun(100, func() {
		if _, err := fr.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per line", n)
	}
}

// TestFrameReaderResize: resizing the read buffer between frames, to any
// size, with bytes of later frames buffered, delivers the same frames as a
// reader never resized.
func TestFrameReaderResize(t *testing.T) {
	var sb strings.Builder
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		msg := fmt.Sprintf("<13>1 - host app - - - line %d %s", i, strings.Repeat("x", rng.IntN(300)))
		switch i % 4 {
		case 0:
			sb.WriteString(octet(msg))
		case 1:
			sb.WriteString(msg + "\r\n")
		case 2:
			sb.WriteString(msg + strings.Repeat("y", 700) + "\n") // over the limit: truncated
		default:
			sb.WriteString(msg + "\n")
		}
	}
	stream := sb.String()
	want, wantErr, wantDiscarded := readFrames(strings.NewReader(stream), 512)

	sizes := []int{16, 100, readBufferBytes, 256 << 10, 4096}
	for _, chunked := range []bool{false, true} {
		var r io.Reader = strings.NewReader(stream)
		if chunked {
			r = iotest.HalfReader(r)
		}
		fr := NewFrameReader(r, 512)
		var got []frameOut
		var err error
		for i := 0; ; i++ {
			var f Frame
			f, err = fr.Next()
			if err != nil {
				break
			}
			got = append(got, frameOut{string(f.Data), f.Truncated, f.Reason})
			if i%7 == 0 {
				size := sizes[rng.IntN(len(sizes))]
				fr.Resize(size)
				if fr.BufferSize() != max(size, 16) {
					t.Fatalf("BufferSize %d after Resize(%d)", fr.BufferSize(), size)
				}
			}
		}
		if err != wantErr || fr.Discarded() != wantDiscarded {
			t.Fatalf("chunked %v: end %v, %d discarded; want %v, %d", chunked, err, fr.Discarded(), wantErr, wantDiscarded)
		}
		if len(got) != len(want) {
			t.Fatalf("chunked %v: %d frames, want %d", chunked, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("chunked %v: frame %d = %v, want %v", chunked, i, got[i], want[i])
			}
		}
	}
}
