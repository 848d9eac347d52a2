package syslog

import (
	"strings"
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

func benchParse(b *testing.B, msg []byte) { benchParser(b, &Parser{Location: time.UTC}, msg) }

func benchParser(b *testing.B, p *Parser, msg []byte) {
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

// benchOffset is bench5424 stamped as rsyslog stamps it: local time and its
// offset (rsyslog writes "+00:00" for UTC, never "Z").
var benchOffset = []byte(strings.Replace(string(bench5424), "2003-10-11T22:14:15.003Z", "2003-10-11T23:14:15.003412+01:00", 1))

func BenchmarkParse5424Offset(b *testing.B) { benchParse(b, benchOffset) }

// BenchmarkParse5424OffsetGoSyslog is BenchmarkParse5424Offset through
// go-syslog.
func BenchmarkParse5424OffsetGoSyslog(b *testing.B) {
	benchParser(b, &Parser{Location: time.UTC, fastOff: true}, benchOffset)
}

// BenchmarkParse5424GoSyslog is BenchmarkParse5424 with every line through
// go-syslog, as before the plain path: the baseline of the same run.
func BenchmarkParse5424GoSyslog(b *testing.B) {
	benchParser(b, &Parser{Location: time.UTC, fastOff: true}, bench5424)
}
func BenchmarkParse3164(b *testing.B) { benchParse(b, bench3164) }

// BenchmarkParse3164GoSyslog is BenchmarkParse3164 through go-syslog too.
func BenchmarkParse3164GoSyslog(b *testing.B) {
	benchParser(b, &Parser{Location: time.UTC, fastOff: true}, bench3164)
}
func BenchmarkParseRaw(b *testing.B) { benchParse(b, benchRaw) }
