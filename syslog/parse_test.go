package syslog

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	gosyslog "github.com/leodido/go-syslog/v4"

	"github.com/logmesh/logmesh/record"
)

// The reference receive time of the parse tests: an hour after the RFC
// examples were stamped.
var recvRFC = time.Date(2003, 10, 11, 23, 0, 0, 0, time.UTC)

// parsed is what a test expects Parse to produce.
type parsed struct {
	format    record.Format
	flags     record.Flags
	reason    record.Reason
	facility  record.Facility
	severity  record.Severity
	host, app string
	procID    string
	msgID     string
	sd        string
	msg       string
	time      time.Time
}

func (p parsed) String() string {
	return fmt.Sprintf("format=%v flags=%04b reason=%q pri=%v.%v host=%q app=%q procid=%q msgid=%q sd=%q msg=%q time=%v",
		p.format, p.flags, p.reason, p.facility, p.severity, p.host, p.app, p.procID, p.msgID, p.sd, p.msg, p.time)
}

func fromRecord(r *record.Record) parsed {
	return parsed{r.Format, r.Flags, r.Reason, r.Facility, r.Severity, r.Hostname, r.AppName, r.ProcID, r.MsgID,
		r.StructuredData, r.Message, r.EventTime}
}

func checkParse(t *testing.T, p *Parser, in string, recv time.Time, want parsed) {
	t.Helper()
	var r record.Record
	p.Parse([]byte(in), recv, &r)
	got := fromRecord(&r)
	g, w := got, want
	g.time, w.time = time.Time{}, time.Time{}
	if g != w || !got.time.Equal(want.time) {
		t.Errorf("Parse(%q)\n got %v\nwant %v", in, got, want)
	}
	if !bytes.Equal(r.Raw, []byte(in)) {
		t.Errorf("Parse(%q): Raw = %q", in, r.Raw)
	}
}

const (
	hasPRI = record.FlagHasPRI
	bad    = record.FlagParseError
	noTime = record.FlagNoEventTime
	user   = record.DefaultFacility
	notice = record.DefaultSeverity
	f5424  = record.FormatRFC5424
	f3164  = record.FormatRFC3164
	raw    = record.FormatRaw
)

func TestParse5424(t *testing.T) {
	p := &Parser{Location: time.UTC}
	f := func(in string, want parsed) {
		t.Helper()
		checkParse(t, p, in, recvRFC, want)
	}
	ts := time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.UTC)

	// The examples of RFC 5424 section 6.5 ("BOM" is the byte order mark).
	f("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8",
		parsed{format: f5424, flags: hasPRI, facility: 4, severity: 2, host: "mymachine.example.com", app: "su",
			msgID: "ID47", msg: "'su root' failed for lonvick on /dev/pts/8", time: ts})
	f("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
		parsed{format: f5424, flags: hasPRI, facility: 20, severity: 5, host: "192.0.2.1", app: "myproc",
			procID: "8710", msg: "%% It's time to make the do-nuts.",
			time: time.Date(2003, 8, 24, 12, 14, 15, 3000, time.UTC)})
	f(`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] `+"\xEF\xBB\xBF"+`An application event log entry...`,
		parsed{format: f5424, flags: hasPRI, facility: 20, severity: 5, host: "mymachine.example.com", app: "evntslog",
			msgID: "ID47", sd: `[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]`,
			msg: "An application event log entry...", time: ts})
	f(`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`,
		parsed{format: f5424, flags: hasPRI, facility: 20, severity: 5, host: "mymachine.example.com", app: "evntslog",
			msgID: "ID47", sd: `[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`,
			time: ts})

	// NILVALUE everywhere, with and without an (empty) MSG.
	f("<14>1 - - - - - -", parsed{format: f5424, flags: hasPRI | noTime, facility: 1, severity: 6})
	f("<14>1 - - - - - - ", parsed{format: f5424, flags: hasPRI | noTime, facility: 1, severity: 6})
	f("<14>1 - - - - - - -", parsed{format: f5424, flags: hasPRI | noTime, facility: 1, severity: 6, msg: "-"})

	// Escaped '"', '\' and ']' in a PARAM-VALUE: the SD is kept as sent.
	f(`<14>1 2003-10-11T22:14:15.003Z h a p m [x@1 a="q\"uo\\te\]d" b="]"][y@2] after`,
		parsed{format: f5424, flags: hasPRI | bad, reason: record.ReasonBadHeader, facility: 1, severity: 6,
			host: "h", app: "a", procID: "p", msgID: "m", sd: `[x@1 a="q\"uo\\te\]d" b="]"][y@2]`, msg: "after", time: ts})
	f(`<14>1 2003-10-11T22:14:15.003Z h a p m [x@1 a="q\"uo\\te\]d"][y@2] after`,
		parsed{format: f5424, flags: hasPRI, facility: 1, severity: 6,
			host: "h", app: "a", procID: "p", msgID: "m", sd: `[x@1 a="q\"uo\\te\]d"][y@2]`, msg: "after", time: ts})

	// BOM and invalid UTF-8: bytes are kept, the BOM leaves Message only.
	f("<14>1 2003-10-11T22:14:15.003Z h a - - - \xEF\xBB\xBF\xff\xfe bytes",
		parsed{format: f5424, flags: hasPRI, facility: 1, severity: 6, host: "h", app: "a", msg: "\xff\xfe bytes", time: ts})
	f("<14>1 2003-10-11T22:14:15.003Z h a - - - \xc3\x28 bytes",
		parsed{format: f5424, flags: hasPRI, facility: 1, severity: 6, host: "h", app: "a", msg: "\xc3\x28 bytes", time: ts})
	f("<14>1 2003-10-11T22:14:15.003Z h a - - - \xEF\xBB\xBF",
		parsed{format: f5424, flags: hasPRI, facility: 1, severity: 6, host: "h", app: "a", time: ts})
	f("<14>1 2003-10-11T22:14:15.003Z h a - - - a\x00b\x01c",
		parsed{format: f5424, flags: hasPRI, facility: 1, severity: 6, host: "h", app: "a", msg: "a\x00b\x01c", time: ts})

	// Timestamps: leap second (RFC 5424 forbids it), nanoseconds (RFC 5424
	// allows six digits; the time is used, the message flagged), far past
	// and future kept, garbage.
	f("<14>1 2016-12-31T23:59:60Z host app - - - leap",
		parsed{format: f5424, flags: hasPRI | bad | noTime, reason: record.ReasonBadTimestamp, facility: 1, severity: 6,
			host: "host", app: "app", msg: "leap"})
	f("<14>1 2003-10-11T22:14:15.123456789Z host app - - - nanos",
		parsed{format: f5424, flags: hasPRI | bad, reason: record.ReasonBadTimestamp, facility: 1, severity: 6,
			host: "host", app: "app", msg: "nanos", time: time.Date(2003, 10, 11, 22, 14, 15, 123456789, time.UTC)})
	f("<14>1 9999-12-31T23:59:59Z host app - - - future",
		parsed{format: f5424, flags: hasPRI, facility: 1, severity: 6, host: "host", app: "app", msg: "future",
			time: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)})
	f("<14>1 1970-01-01T00:00:00Z host app - - - epoch",
		parsed{format: f5424, flags: hasPRI, facility: 1, severity: 6, host: "host", app: "app", msg: "epoch",
			time: time.Unix(0, 0)})
	f("<14>1 0001-01-01T00:00:00Z host app - - - zero", // the zero time means none to the encoder
		parsed{format: f5424, flags: hasPRI | noTime, facility: 1, severity: 6, host: "host", app: "app", msg: "zero"})
	f("<14>1 yesterday host app - - - x",
		parsed{format: f5424, flags: hasPRI | bad | noTime, reason: record.ReasonBadTimestamp, facility: 1, severity: 6,
			host: "host", app: "app", msg: "x"})
	f("<14>1 2003-02-29T22:14:15Z host app - - - no such day",
		parsed{format: f5424, flags: hasPRI | bad | noTime, reason: record.ReasonBadTimestamp, facility: 1, severity: 6,
			host: "host", app: "app", msg: "no such day"})

	// Broken structure: every field found is kept, the text stays searchable.
	f(`<14>1 2003-10-11T22:14:15.003Z h a - - [x@1 a="b" unterminated`,
		parsed{format: f5424, flags: hasPRI | bad, reason: record.ReasonBadHeader, facility: 1, severity: 6,
			host: "h", app: "a", msg: `[x@1 a="b" unterminated`, time: ts})
	f(`<14>1 2003-10-11T22:14:15.003Z h a - - [x@1 a="b"]glued`,
		parsed{format: f5424, flags: hasPRI | bad, reason: record.ReasonBadHeader, facility: 1, severity: 6,
			host: "h", app: "a", msg: `[x@1 a="b"]glued`, time: ts})
	f(`<14>1 2003-10-11T22:14:15.003Z h a - - [x@1 a="b"][x@1 c="d"] duplicate SD-ID`,
		parsed{format: f5424, flags: hasPRI | bad, reason: record.ReasonBadHeader, facility: 1, severity: 6,
			host: "h", app: "a", sd: `[x@1 a="b"][x@1 c="d"]`, msg: "duplicate SD-ID", time: ts})
	f(`<14>1 2003-10-11T22:14:15.003Z h a - - x not SD`,
		parsed{format: f5424, flags: hasPRI | bad, reason: record.ReasonBadHeader, facility: 1, severity: 6,
			host: "h", app: "a", msg: "x not SD", time: ts})
	f("<14>1 2003-10-11T22:14:15.003Z mymachine",
		parsed{format: raw, flags: hasPRI | bad, reason: record.ReasonBadHeader, facility: 1, severity: 6,
			msg: "1 2003-10-11T22:14:15.003Z mymachine", time: ts})
	f("<14>1 2003-10-11T22:14:15.003Z h\x00st app - - - x",
		parsed{format: f5424, flags: hasPRI | bad, reason: record.ReasonBadHeader, facility: 1, severity: 6,
			host: "h\x00st", app: "app", msg: "x", time: ts})
	f("<14>1 ", parsed{format: raw, flags: hasPRI | bad | noTime, reason: record.ReasonBadHeader, facility: 1, severity: 6,
		msg: "1 "})

	// No PRI: the body is still parsed, the message flagged.
	f("1 2003-10-11T22:14:15.003Z h a p m - msg",
		parsed{format: f5424, flags: bad, reason: record.ReasonNoPRI, facility: user, severity: notice,
			host: "h", app: "a", procID: "p", msgID: "m", msg: "msg", time: ts})
}

func TestParse3164(t *testing.T) {
	p := &Parser{Location: time.UTC}
	f := func(in string, want parsed) {
		t.Helper()
		checkParse(t, p, in, recvRFC, want)
	}
	ts := time.Date(2003, 10, 11, 22, 14, 15, 0, time.UTC)

	// RFC 3164 section 5.4.
	f("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
		parsed{format: f3164, flags: hasPRI, facility: 4, severity: 2, host: "mymachine", app: "su",
			msg: "'su root' failed for lonvick on /dev/pts/8", time: ts})
	f("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!", // closer to October 2003 in 2004 than in 2003
		parsed{format: f3164, flags: hasPRI, facility: 1, severity: 5, host: "10.0.0.99", msg: "Use the BFG!",
			time: time.Date(2004, 2, 5, 17, 32, 18, 0, time.UTC)})
	// With a PID, without a hostname, both.
	f("<34>Oct 11 22:14:15 mymachine sshd[4321]: Accepted publickey",
		parsed{format: f3164, flags: hasPRI, facility: 4, severity: 2, host: "mymachine", app: "sshd", procID: "4321",
			msg: "Accepted publickey", time: ts})
	f("<34>Oct 11 22:14:15 su: 'su root' failed",
		parsed{format: f3164, flags: hasPRI, facility: 4, severity: 2, app: "su", msg: "'su root' failed", time: ts})
	f("<34>Oct 11 22:14:15 app[123]: hi",
		parsed{format: f3164, flags: hasPRI, facility: 4, severity: 2, app: "app", procID: "123", msg: "hi", time: ts})
	// Day forms, fractions, spaces go-syslog does not accept, RFC 3339.
	f("<13>Oct  1 22:14:15 h a: x", parsed{format: f3164, flags: hasPRI, facility: 1, severity: 5, host: "h", app: "a",
		msg: "x", time: time.Date(2003, 10, 1, 22, 14, 15, 0, time.UTC)})
	f("<13>Oct 01 22:14:15 h a: x", parsed{format: f3164, flags: hasPRI, facility: 1, severity: 5, host: "h", app: "a",
		msg: "x", time: time.Date(2003, 10, 1, 22, 14, 15, 0, time.UTC)})
	f("<13>Oct 1 22:14:15 h a: x", parsed{format: f3164, flags: hasPRI, facility: 1, severity: 5, host: "h", app: "a",
		msg: "x", time: time.Date(2003, 10, 1, 22, 14, 15, 0, time.UTC)})
	f("<13>Oct 11 22:14:15.123 h a: x", parsed{format: f3164, flags: hasPRI, facility: 1, severity: 5, host: "h",
		app: "a", msg: "x", time: ts.Add(123 * time.Millisecond)})
	f("<13>  Oct 11 22:14:15   h   a: x", parsed{format: f3164, flags: hasPRI, facility: 1, severity: 5, host: "h",
		app: "a", msg: "x", time: ts})
	f("<13>2003-10-11T22:14:15.5+02:00 h a: x", parsed{format: f3164, flags: hasPRI, facility: 1, severity: 5,
		host: "h", app: "a", msg: "x", time: time.Date(2003, 10, 11, 20, 14, 15, 5e8, time.UTC)})
	// Control bytes in the text: go-syslog returns nothing for them.
	f("<13>Oct 11 22:14:15 host app: a\x00b", parsed{format: f3164, flags: hasPRI, facility: 1, severity: 5,
		host: "host", app: "app", msg: "a\x00b", time: ts})
	f("<13>Oct 11 22:14:15 host app: a\x01b", parsed{format: f3164, flags: hasPRI, facility: 1, severity: 5,
		host: "host", app: "app", msg: "a\x01b", time: ts})
	f("<13>Oct 11 22:14:15 host app: \x1b[31mred\x1b[0m", parsed{format: f3164, flags: hasPRI, facility: 1,
		severity: 5, host: "host", app: "app", msg: "\x1b[31mred\x1b[0m", time: ts})
	f("<13>Oct 11 22:14:15 ho\x00st app: x", parsed{format: f3164, flags: hasPRI, facility: 1, severity: 5,
		msg: "ho\x00st app: x", time: ts})
	// Where go-syslog's grammar is resolved wrongly.
	f("<13>Oct 11 22:14:15 myhost app[12 msg", parsed{format: f3164, flags: hasPRI, facility: 1, severity: 5,
		host: "myhost", msg: "app[12 msg", time: ts})
	f("<13>Oct 11 22:14:15 host app:", parsed{format: f3164, flags: hasPRI, facility: 1, severity: 5,
		host: "host", msg: "app:", time: ts})
	f("<13>Oct 11 22:14:15 host app: ", parsed{format: f3164, flags: hasPRI, facility: 1, severity: 5,
		host: "host", app: "app", time: ts})
	f("<13>Oct 11 22:14:15", parsed{format: f3164, flags: hasPRI, facility: 1, severity: 5, time: ts})
	f("<13>Oct 11 22:14:15 word", parsed{format: f3164, flags: hasPRI, facility: 1, severity: 5, msg: "word", time: ts})
	f("<13>Oct 11 22:14:15 - -: x", parsed{format: f3164, flags: hasPRI, facility: 1, severity: 5, msg: "x", time: ts})
	// Invalid UTF-8, BOM.
	f("<13>Oct 11 22:14:15 h a: \xEF\xBB\xBF\xff", parsed{format: f3164, flags: hasPRI, facility: 1, severity: 5,
		host: "h", app: "a", msg: "\xff", time: ts})
	// Bad and missing timestamps.
	f("<13>Oct 11 22:14:60 host app: leap", parsed{format: f3164, flags: hasPRI | bad | noTime,
		reason: record.ReasonBadTimestamp, facility: 1, severity: 5, host: "host", app: "app", msg: "leap"})
	f("<13>Feb 30 22:14:15 host app: x", parsed{format: f3164, flags: hasPRI | bad | noTime,
		reason: record.ReasonBadTimestamp, facility: 1, severity: 5, host: "host", app: "app", msg: "x"})
	f("<13>Oct 11 22:14:15: %SYS-5-CONFIG_I: x", parsed{format: f3164, flags: hasPRI | bad | noTime,
		reason: record.ReasonBadTimestamp, facility: 1, severity: 5, app: "%SYS-5-CONFIG_I", msg: "x"})
	f("<13>Oct 11 garbage", parsed{format: raw, flags: hasPRI | bad | noTime, reason: record.ReasonBadTimestamp,
		facility: 1, severity: 5, msg: "Oct 11 garbage"})
	f("<13>hello world", parsed{format: raw, flags: hasPRI | bad | noTime, reason: record.ReasonBadHeader,
		facility: 1, severity: 5, msg: "hello world"})
	f("<13>", parsed{format: raw, flags: hasPRI | bad | noTime, reason: record.ReasonBadHeader, facility: 1, severity: 5})
	f("<13>2003-10-11T22:14:15.003+25:00 h a: x", parsed{format: f3164, flags: hasPRI | bad | noTime,
		reason: record.ReasonBadTimestamp, facility: 1, severity: 5, host: "h", app: "a", msg: "x"})
	// A date and a space is application text, not a syslog timestamp.
	f("<13>2003-10-11 22:14:15,003 INFO x", parsed{format: raw, flags: hasPRI | bad | noTime,
		reason: record.ReasonBadHeader, facility: 1, severity: 5, msg: "2003-10-11 22:14:15,003 INFO x"})
	f("2003-10-11 22:14:15,003 INFO x", parsed{format: raw, flags: bad | noTime, reason: record.ReasonNoPRI,
		facility: user, severity: notice, msg: "2003-10-11 22:14:15,003 INFO x"})
	// No PRI: still parsed, flagged.
	f("Oct 11 22:14:15 host app: x", parsed{format: f3164, flags: bad, reason: record.ReasonNoPRI,
		facility: user, severity: notice, host: "host", app: "app", msg: "x", time: ts})
}

func TestParseYear(t *testing.T) {
	f := func(in string, recv, want time.Time) {
		t.Helper()
		checkParse(t, &Parser{Location: time.UTC}, in, recv, parsed{format: f3164, flags: hasPRI, facility: 1,
			severity: 5, host: "h", app: "a", msg: "x", time: want})
	}
	date := func(y int, m time.Month, d, hh, mm, ss int) time.Time {
		return time.Date(y, m, d, hh, mm, ss, 0, time.UTC)
	}
	// New Year, both ways.
	f("<13>Dec 31 23:59:00 h a: x", date(2025, 1, 1, 0, 1, 0), date(2024, 12, 31, 23, 59, 0))
	f("<13>Jan  1 00:00:01 h a: x", date(2024, 12, 31, 23, 59, 59), date(2025, 1, 1, 0, 0, 1))
	f("<13>Jun 15 12:00:00 h a: x", date(2025, 1, 1, 0, 1, 0), date(2025, 6, 15, 12, 0, 0))
	f("<13>Aug 15 12:00:00 h a: x", date(2025, 1, 1, 0, 1, 0), date(2024, 8, 15, 12, 0, 0))
	// February 29 exists in leap years only.
	f("<13>Feb 29 12:00:00 h a: x", date(2024, 3, 1, 0, 0, 0), date(2024, 2, 29, 12, 0, 0))
	f("<13>Feb 29 12:00:00 h a: x", date(2025, 3, 1, 0, 0, 0), date(2024, 2, 29, 12, 0, 0))
	f("<13>Feb 29 12:00:00 h a: x", date(2027, 12, 1, 0, 0, 0), date(2028, 2, 29, 12, 0, 0))

	// The zone of the Parser applies to timestamps without one.
	east := time.FixedZone("UTC+2", 2*3600)
	checkParse(t, &Parser{Location: east}, "<13>Oct 11 22:14:15 h a: x", recvRFC, parsed{format: f3164,
		flags: hasPRI, facility: 1, severity: 5, host: "h", app: "a", msg: "x",
		time: time.Date(2003, 10, 11, 20, 14, 15, 0, time.UTC)})
}

func TestParsePRI(t *testing.T) {
	p := &Parser{Location: time.UTC}
	f := func(in string, want parsed) {
		t.Helper()
		checkParse(t, p, in, recvRFC, want)
	}
	body := " Oct 11 22:14:15 h a: x"
	ts := time.Date(2003, 10, 11, 22, 14, 15, 0, time.UTC)
	ok := func(fac record.Facility, sev record.Severity) parsed {
		return parsed{format: f3164, flags: hasPRI, facility: fac, severity: sev, host: "h", app: "a", msg: "x", time: ts}
	}
	badPRI := func(in string) parsed {
		return parsed{format: raw, flags: bad | noTime, reason: record.ReasonBadPRI, facility: user, severity: notice, msg: in}
	}
	f("<0>"+body, ok(0, 0))
	f("<191>"+body, ok(23, 7))
	f("<013>"+body, ok(1, 5)) // leading zeros, at most three digits
	f("<000>"+body, ok(0, 0))
	f("<01>"+body, ok(0, 1))
	f("<0013>"+body, badPRI("<0013>"+body))
	f("<192>"+body, badPRI("<192>"+body))
	f("<999>"+body, badPRI("<999>"+body))
	f("<>"+body, badPRI("<>"+body))
	f("<1x>"+body, badPRI("<1x>"+body))
	f("<-1>"+body, badPRI("<-1>"+body))
	f("<13", badPRI("<13"))
	f("<", badPRI("<"))
	f("hello world", parsed{format: raw, flags: bad | noTime, reason: record.ReasonNoPRI, facility: user,
		severity: notice, msg: "hello world"})
	f(" <13>x", parsed{format: raw, flags: bad | noTime, reason: record.ReasonNoPRI, facility: user,
		severity: notice, msg: " <13>x"})
	f("4\x00  ", parsed{format: raw, flags: bad | noTime, reason: record.ReasonNoPRI, facility: user,
		severity: notice, msg: "4\x00  "})
	f("", parsed{format: raw, flags: bad | noTime, reason: record.ReasonEmpty, facility: user, severity: notice})
}

func TestParseOwnership(t *testing.T) {
	p := &Parser{}
	msg := []byte("<13>Oct 11 22:14:15 host app: text")
	r := record.Record{Source: "1.2.3.4:5", Peer: "p1", Transport: record.TransportUDP,
		Fields: []record.Field{{Key: "k", Value: "v"}}, Hostname: "stale", StructuredData: "stale"}
	r.ID[0] = 7
	p.Parse(msg, recvRFC, &r)
	copy(msg, strings.Repeat("X", len(msg)))
	if string(r.Raw) != "<13>Oct 11 22:14:15 host app: text" || r.Message != "text" || r.Hostname != "host" {
		t.Fatalf("Parse keeps the caller's bytes: raw %q message %q host %q", r.Raw, r.Message, r.Hostname)
	}
	if r.StructuredData != "" {
		t.Errorf("StructuredData = %q, want it reset", r.StructuredData)
	}
	if r.ID[0] != 7 || r.Source != "1.2.3.4:5" || r.Peer != "p1" || r.Transport != record.TransportUDP || len(r.Fields) != 1 {
		t.Errorf("Parse changed fields it does not own: %+v", r)
	}
}

func TestParseConcurrent(t *testing.T) {
	p := &Parser{Location: time.UTC}
	done := make(chan parsed)
	for range 4 {
		go func() {
			var r record.Record
			for range 200 {
				p.Parse(bench5424, recvRFC, &r)
			}
			done <- fromRecord(&r)
		}()
	}
	for range 4 {
		if got := <-done; got.host != "mymachine.example.com" || got.flags != hasPRI {
			t.Errorf("concurrent Parse: %v", got)
		}
	}
}

// panicMachine is a go-syslog machine with a bug.
type panicMachine struct{}

func (panicMachine) Parse([]byte) (gosyslog.Message, error) { panic("index out of range") }
func (panicMachine) WithBestEffort()                        {}
func (panicMachine) HasBestEffort() bool                    { return true }

func TestParseLibraryPanic(t *testing.T) {
	p := &Parser{Location: time.UTC}
	p.init()
	p.p5424, p.p3164 = panicMachine{}, panicMachine{}
	p.fastOff = true // else go-syslog is not called for this line
	// The scan's fields, flagged: go-syslog did not vouch for the grammar.
	checkParse(t, p, "<14>1 2003-10-11T22:14:15.003Z h a - - - x", recvRFC, parsed{format: f5424,
		flags: hasPRI | bad, reason: record.ReasonBadHeader, facility: 1, severity: 6, host: "h", app: "a", msg: "x",
		time: time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.UTC)})
	checkParse(t, p, "<13>Oct 11 22:14:15 host app: x", recvRFC, parsed{format: f3164, flags: hasPRI, facility: 1,
		severity: 5, host: "host", app: "app", msg: "x", time: time.Date(2003, 10, 11, 22, 14, 15, 0, time.UTC)})
}
