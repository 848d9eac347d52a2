package record

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

func sampleRecords() []*Record {
	g := NewGenerator(nil)
	raw := []byte(`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut="3"] An application event`)
	return []*Record{
		{
			ID: g.Next(), EventTime: time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.UTC),
			Facility: 20, Severity: SevNotice, Format: FormatRFC5424, Transport: TransportTCP, Flags: FlagHasPRI,
			Hostname: "mymachine.example.com", AppName: "evntslog", ProcID: "1234", MsgID: "ID47",
			StructuredData: `[exampleSDID@32473 iut="3"]`, Message: "An application event",
			Source: "10.0.0.7:51514", Peer: "peer-1", Raw: raw,
		},
		{
			ID: g.Next(), Format: FormatRaw, Transport: TransportUDP, Flags: FlagParseError | FlagNoEventTime,
			Reason: ReasonNoPRI, Raw: []byte("\x00\xff garbage \xfe"), Source: "[::1]:9", Peer: "p",
			Facility: DefaultFacility, Severity: DefaultSeverity,
		},
		{
			ID: g.Next(), Format: FormatJSON, Transport: TransportHTTP, Message: "checkout failed",
			Hostname: "web-3", AppName: "shop", Severity: SevError, Facility: 16,
			Fields: []Field{{Key: "env", Value: "prod"}, {Key: "service", Value: "checkout"}, {Key: "trace_id", Value: "abc123"}},
		},
		{ID: g.Next()},
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for i, r := range sampleRecords() {
		if r.EventTime.IsZero() {
			r.EventTime = r.Received()
		}
		enc := r.AppendEncode(nil)
		got, err := Decode(r.ID, enc)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("record %d round trip:\n got %+v\nwant %+v", i, got, r)
		}
	}
}

func TestEncodingReferencesRawInsteadOfCopying(t *testing.T) {
	r := sampleRecords()[0]
	enc := r.AppendEncode(nil)
	// raw plus a small header: the parsed strings must not be stored twice
	if extra := len(enc) - len(r.Raw) - len(r.Source) - len(r.Peer); extra > 40 {
		t.Fatalf("encoding has %d bytes beyond raw+source+peer; parsed fields were copied", extra)
	}
}

func TestViewFieldLookup(t *testing.T) {
	r := sampleRecords()[2]
	var v View
	if err := v.Reset(r.AppendEncode(nil)); err != nil {
		t.Fatal(err)
	}
	if val, ok := v.Field("service"); !ok || string(val) != "checkout" {
		t.Fatalf("Field(service) = %q, %v", val, ok)
	}
	if _, ok := v.Field("missing"); ok {
		t.Fatal("Field(missing) found")
	}
	if string(v.Hostname()) != "web-3" || v.Severity != SevError {
		t.Fatalf("view host %q sev %v", v.Hostname(), v.Severity)
	}
}

func TestDecodeRejectsCorruptInput(t *testing.T) {
	good := sampleRecords()[0].AppendEncode(nil)
	for n := 0; n < len(good); n++ {
		if _, err := Decode(ID{}, good[:n]); err == nil {
			t.Fatalf("Decode of %d-byte prefix succeeded", n)
		}
	}
	bad := bytes.Clone(good)
	bad[0] = 99
	if _, err := Decode(ID{}, bad); err == nil {
		t.Fatal("unknown version accepted")
	}
	if _, err := Decode(ID{}, append(bytes.Clone(good), 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

func FuzzDecode(f *testing.F) {
	for _, r := range sampleRecords() {
		f.Add(r.AppendEncode(nil))
	}
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		var id ID
		r, err := Decode(id, data)
		if err != nil {
			return
		}
		// a decodable record re-encodes to something that decodes to the same record
		again, err := Decode(id, r.AppendEncode(nil))
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, r) {
			t.Fatalf("re-encode changed the record:\n%+v\n%+v", r, again)
		}
	})
}

func TestEventTimeFarFromReceiveTimeIsNotCorrupted(t *testing.T) {
	id := NewGenerator(nil).Next()
	for _, et := range []time.Time{time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)} {
		r := &Record{ID: id, EventTime: et}
		got, err := Decode(id, r.AppendEncode(nil))
		if err != nil {
			t.Fatal(err)
		}
		if !got.Flags.Has(FlagNoEventTime) || !got.EventTime.Equal(id.Time()) {
			t.Fatalf("event time %v came back as %v flags %b; want the receive time, flagged", et, got.EventTime, got.Flags)
		}
	}
	near := time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)
	got, _ := Decode(id, (&Record{ID: id, EventTime: near}).AppendEncode(nil))
	if !got.EventTime.Equal(near) {
		t.Fatalf("event time %v came back as %v", near, got.EventTime)
	}
}

// BenchmarkAppendEncode encodes a parsed ~200-byte RFC 5424 line whose
// fields are copies (as a parser returns them), not views of Raw.
func BenchmarkAppendEncode(b *testing.B) {
	raw := []byte(`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry with some more text in it`)
	cp := func(s string) string { return string([]byte(s)) }
	r := &Record{ID: NewGenerator(nil).Next(), EventTime: time.Now(), Format: FormatRFC5424, Transport: TransportTCP,
		Hostname: cp("mymachine.example.com"), AppName: cp("evntslog"), ProcID: cp("1234"), MsgID: cp("ID47"),
		StructuredData: cp(`[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]`),
		Message:        cp("An application event log entry with some more text in it"),
		Source:         "10.0.0.7:51514", Peer: "peer-1", Raw: raw}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendEncode(buf[:0])
	}
	b.ReportMetric(float64(len(buf)), "bytes/record")
}

// FuzzEncodeRoundTrip: whatever the strings are (parts of Raw in any order,
// overlapping, or not in it at all), decoding the encoding gives them back.
func FuzzEncodeRoundTrip(f *testing.F) {
	f.Add([]byte(`<165>1 2003-10-11T22:14:15.003Z host app 1234 ID47 - An application event`), uint64(0x0123456789abcdef), "host app")
	f.Add([]byte("aaaaaaaaaaaa"), uint64(42), "aaaa")
	f.Add([]byte{}, uint64(7), "x")
	f.Fuzz(func(t *testing.T, raw []byte, pick uint64, other string) {
		// each of the 8 strings is a slice of raw chosen by 8 bits of pick,
		// or other
		var strs [8]string
		for i := range strs {
			b := byte(pick >> (8 * i))
			if b&1 == 1 || len(raw) == 0 {
				strs[i] = other
				continue
			}
			from := int(b>>1) % len(raw)
			to := from + int(b>>4)%(len(raw)-from+1)
			strs[i] = string(raw[from:to])
		}
		r := &Record{ID: NewGenerator(nil).Next(), Raw: raw,
			Hostname: strs[0], AppName: strs[1], ProcID: strs[2], MsgID: strs[3],
			StructuredData: strs[4], Message: strs[5], Source: strs[6], Peer: strs[7]}
		r.EventTime = r.Received()
		got, err := Decode(r.ID, r.AppendEncode(nil))
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Raw) == 0 && len(r.Raw) == 0 {
			got.Raw = r.Raw
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
		}
	})
}

func TestRawSpanCutsAndSpliceRawRestores(t *testing.T) {
	for _, r := range []Record{
		{Raw: []byte("<13>1 - h a - - - hello world"), Hostname: "h", AppName: "app", Message: "hello world", Peer: "p1"},
		{Message: "no raw bytes", Peer: "p2", Fields: []Field{{Key: "env", Value: "prod"}}},
	} {
		data := r.AppendEncode(nil)
		start, end, err := RawSpan(data)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(data[start:end]); got != string(r.Raw) {
			t.Fatalf("RawSpan cut %q, want the raw bytes %q", got, r.Raw)
		}
		rest := append(append([]byte(nil), data[:start]...), data[end:]...)
		raws := append(append([]byte(nil), data[start:end]...), "next"...)
		out, left, err := SpliceRaw([]byte("x"), rest, raws)
		if err != nil {
			t.Fatal(err)
		}
		if string(out[1:]) != string(data) || string(left) != "next" {
			t.Fatalf("SpliceRaw gave %q and left %q", out[1:], left)
		}
		if len(r.Raw) > 0 {
			if _, _, err := SpliceRaw(nil, rest, raws[:len(r.Raw)-1]); err == nil {
				t.Error("SpliceRaw took raw bytes beyond the column's end")
			}
		}
	}
	for _, bad := range [][]byte{nil, {2}, {1, 0, 0}, {1, 0, 0, 0, 0, 0, 0, 9}} {
		if _, _, err := RawSpan(bad); err == nil {
			t.Errorf("RawSpan accepted %v", bad)
		}
		if _, _, err := SpliceRaw(nil, bad, []byte("abcdefgh")); err == nil {
			t.Errorf("SpliceRaw accepted %v", bad)
		}
	}
}
