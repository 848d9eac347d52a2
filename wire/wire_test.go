package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/logmesh/logmesh/record"
)

func TestRoundTrip(t *testing.T) {
	var b bytes.Buffer
	w, err := NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	g := record.NewGenerator(nil)
	ids := []record.ID{g.Next(), g.Next()}
	datas := [][]byte{[]byte("first"), bytes.Repeat([]byte("x"), 70000)}
	for i := range ids {
		if err := w.Record(ids[i], datas[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.End(`{"coverage":"full"}`); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(&b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ids {
		f, err := r.Next()
		if err != nil || f.Kind != KindRecord || f.ID != ids[i] || !bytes.Equal(f.Data, datas[i]) {
			t.Fatalf("frame %d: %v %q", i, err, f.Kind)
		}
	}
	if f, err := r.Next(); err != nil || f.Kind != KindTrailer || string(f.Data) != `{"coverage":"full"}` {
		t.Fatalf("trailer: %v %+v", err, f)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after trailer: %v", err)
	}
}

func TestCutStreamIsIncomplete(t *testing.T) {
	var b bytes.Buffer
	w, _ := NewWriter(&b)
	w.Record(record.NewGenerator(nil).Next(), []byte("data"))
	w.Flush()
	for n := 3; n < b.Len(); n++ {
		r, err := NewReader(bytes.NewReader(b.Bytes()[:n]))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Next(); !errors.Is(err, ErrIncomplete) {
			t.Fatalf("cut at %d: %v", n, err)
		}
	}
	r, _ := NewReader(bytes.NewReader(b.Bytes()))
	r.Next()
	if _, err := r.Next(); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("stream without a trailer: %v", err)
	}
	if _, err := NewReader(bytes.NewReader([]byte{'L', 'M', 9})); !errors.Is(err, ErrVersion) {
		t.Fatalf("future version: %v", err)
	}
	if _, err := NewReader(bytes.NewReader([]byte("GET / HTTP/1.1"))); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("not a stream: %v", err)
	}
}

func FuzzReader(f *testing.F) {
	var b bytes.Buffer
	w, _ := NewWriter(&b)
	w.Record(record.NewGenerator(nil).Next(), []byte("data"))
	w.Error("boom")
	f.Add(b.Bytes())
	f.Add([]byte{'L', 'M', 1, 'R'})
	f.Add([]byte{'L', 'M', 1, 'T', 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := NewReader(bytes.NewReader(in))
		if err != nil {
			return
		}
		for i := 0; i < 10000; i++ {
			fr, err := r.Next()
			if err != nil {
				return
			}
			if len(fr.Data) > MaxRecordBytes {
				t.Fatalf("frame of %d bytes", len(fr.Data))
			}
		}
	})
}
