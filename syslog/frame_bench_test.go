package syslog

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// benchStream is about 1 MiB of 200-byte messages in one framing.
func benchStream(octet bool) []byte {
	var buf bytes.Buffer
	for buf.Len() < 1<<20 {
		if octet {
			fmt.Fprintf(&buf, "%d %s", len(bench5424), bench5424)
		} else {
			buf.Write(bench5424)
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes()
}

func benchFrames(b *testing.B, stream []byte) {
	r := bytes.NewReader(stream)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(stream)
		fr := NewFrameReader(r, DefaultMaxMessageBytes)
		for {
			if _, err := fr.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkFrameNewline(b *testing.B) { benchFrames(b, benchStream(false)) }
func BenchmarkFrameOctet(b *testing.B)   { benchFrames(b, benchStream(true)) }

// BenchmarkFrameLongLine reads 1 MiB lines, truncated to the default limit.
func BenchmarkFrameLongLine(b *testing.B) {
	stream := append(bytes.Repeat([]byte("x"), 1<<20), '\n')
	benchFrames(b, bytes.Repeat(stream, 4))
}
