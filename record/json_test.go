package record

import (
	"errors"
	"testing"
	"time"
)

func TestParseJSON(t *testing.T) {
	f := func(line string, check func(r *Record)) {
		t.Helper()
		var r Record
		if err := ParseJSON([]byte(line), &r); err != nil {
			t.Fatalf("ParseJSON(%s): %v", line, err)
		}
		check(&r)
	}
	f(`{"time":"2026-11-25T10:00:00.123Z","host":"web-1","app":"shop","severity":"error","message":"boom","service":"checkout","geo":{"country":"NZ"},"fields":{"trace_id":"abc","n":3}}`,
		func(r *Record) {
			if r.Hostname != "web-1" || r.AppName != "shop" || r.Severity != SevError || r.Message != "boom" {
				t.Fatalf("parsed %+v", r)
			}
			if !r.EventTime.Equal(time.Date(2026, 11, 25, 10, 0, 0, 123e6, time.UTC)) || r.Flags.Has(FlagNoEventTime) {
				t.Fatalf("event time %v flags %v", r.EventTime, r.Flags)
			}
			for k, want := range map[string]string{"service": "checkout", "geo": `{"country":"NZ"}`, "trace_id": "abc", "n": "3"} {
				if got, ok := r.Field(k); !ok || got != want {
					t.Fatalf("field %s = %q, %v; want %q", k, got, ok, want)
				}
			}
		})
	f(`{"msg":"x","level":3,"timestamp":1700000000.5}`, func(r *Record) {
		if r.Severity != SevError || r.EventTime.UnixMilli() != 1700000000500 {
			t.Fatalf("got sev %v time %v", r.Severity, r.EventTime)
		}
	})
	f(`{"message":"x","time":1700000000123}`, func(r *Record) {
		if r.EventTime.UnixMilli() != 1700000000123 {
			t.Fatalf("ms time parsed as %v", r.EventTime)
		}
	})
	f(`{"message":"no time"}`, func(r *Record) {
		if !r.Flags.Has(FlagNoEventTime) || r.Severity != DefaultSeverity {
			t.Fatalf("defaults not applied: %+v", r)
		}
	})
	for _, bad := range []string{`not json`, `[1,2]`, `{"severity":"loud"}`, `{"time":"yesterday"}`, `{"a":1}{"b":2}`, `{"fields":3}`, `{"":"x"}`} {
		var r Record
		if err := ParseJSON([]byte(bad), &r); !errors.Is(err, ErrBadJSON) {
			t.Errorf("ParseJSON(%s) = %v, want ErrBadJSON", bad, err)
		}
	}
}

func TestToJSONKeepsRawBytes(t *testing.T) {
	r := &Record{ID: NewGenerator(nil).Next(), Raw: []byte{0xff, 0, 'x'}, Flags: FlagParseError, Reason: ReasonNoPRI}
	j := r.ToJSON()
	if j.Raw != "" || j.Malformed != "no_pri" {
		t.Fatalf("json %+v", j)
	}
	b, err := j.RawBytes()
	if err != nil || string(b) != string(r.Raw) {
		t.Fatalf("raw bytes did not survive: %q %v", b, err)
	}
}

func FuzzParseJSON(f *testing.F) {
	f.Add([]byte(`{"time":"2026-11-25T10:00:00Z","host":"h","message":"m","x":[1,{"y":null}]}`))
	f.Add([]byte(`{"time":1e300}`))
	f.Add([]byte(`{"fields":{"a":"b"},"severity":7}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var r Record
		if err := ParseJSON(line, &r); err != nil {
			return
		}
		r.ID = NewGenerator(nil).Next()
		if _, err := Decode(r.ID, r.AppendEncode(nil)); err != nil {
			t.Fatalf("accepted JSON record does not encode: %v", err)
		}
	})
}
