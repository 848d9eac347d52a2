package syslog

import (
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// Typical lines of about 200 bytes.
var (
	bench5424 = []byte(`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry with some more text in it`)
	bench3164 = []byte(`<34>Oct 11 22:14:15 mymachine su[1234]: 'su root' failed for lonvick on /dev/pts/8 and some more text to make this line about as long as a typical one is, say 200 bytes or so, ok`)
	benchRaw  = []byte(`2024-01-01 12:00:00,123 INFO [main] com.example.Service - a plain application log line without any syslog header at all, sent by a misconfigured forwarder over plain TCP`)
)

func benchParse(b *testing.B, msg []byte) {
	p := &Parser{Location: time.UTC}
	recv := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	var r record.Record
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		p.Parse(msg, recv, &r)
	}
	if r.Format == record.FormatRaw && msg[0] == '<' {
		b.Fatalf("did not parse: %v", r.Reason)
	}
}

func BenchmarkParse5424(b *testing.B) { benchParse(b, bench5424) }
func BenchmarkParse3164(b *testing.B) { benchParse(b, bench3164) }
func BenchmarkParseRaw(b *testing.B)  { benchParse(b, benchRaw) }
