package syslog

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/logmesh/logmesh/record"
)

// parseSeeds are the edge cases of the field notes, and the examples of the
// RFCs.
var parseSeeds = []string{
	"",
	"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8",
	`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] msg`,
	`<14>1 2003-10-11T22:14:15.003Z h a p m [x@1 a="q\"uo\\te\]d"][y@2] after`,
	`<14>1 2003-10-11T22:14:15.003Z h a - - [x@1 a="b" unterminated`,
	`<14>1 2003-10-11T22:14:15.003Z h a - - [x@1 a="b"][x@1 c="d"] duplicate`,
	"<14>1 - - - - - -",
	"<14>1 2016-12-31T23:59:60Z host app - - - leap",
	"<14>1 2003-10-11T22:14:15.123456789Z host app - - - nanos",
	"<14>1 9999-12-31T23:59:59Z host app - - - \xc3\x28",
	"<14>1 0001-01-01T00:00:00Z host app - - - zero",
	"<13>0001-01-01T00:00:00Z host app: zero",
	"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
	"<13>Feb 29 17:32:18 10.0.0.99 app[123]: Use the BFG!",
	"<13>Oct 11 22:14:15 host app: a\x00b\x01c",
	"<13>Oct 11 22:14:15 myhost app[12 msg",
	"<13>Oct 11 22:14:60 host app: leap",
	"<13>2003-10-11T22:14:15.5+02:00 h a: x",
	"<13>Oct 11 22:14:15: %SYS-5-CONFIG_I: x",
	"<0013>x", "<192>x", "<999>x", "<>x", "<", "<13", "<013>1 - - - - - -",
	"no pri at all", "4\x00  ", "Oct 11 22:14:15 host app: x", "1 - - - - - - x",
	"<13>\xEF\xBB\xBF\xff\xfe",
}

func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	recv := time.Date(2025, 1, 1, 0, 0, 30, 0, time.UTC)
	shared := &Parser{Location: time.UTC}
	lib5424 := rfc5424.NewParser(rfc5424.WithBestEffort(), rfc5424.WithOptionalPriority())
	f.Fuzz(func(t *testing.T, in []byte) {
		var r record.Record
		shared.Parse(in, recv, &r)
		checkRecord(t, in, &r)

		// The SD scan against a naive one.
		for _, at := range []int{0, bytes.IndexByte(in, ' ') + 1} {
			end, ok := scanSD(in, at)
			wantEnd, wantOK := naiveScanSD(in, at)
			if ok != wantOK || ok && end != wantEnd {
				t.Fatalf("scanSD(%q, %d) = %d, %v; want %d, %v", in, at, end, ok, wantEnd, wantOK)
			}
		}
		// Where go-syslog accepts an RFC 5424 message, the scan finds the
		// same fields (else the scan's would be used unflagged).
		if _, at, reason := parsePRI(in); reason != record.ReasonBadPRI && bytes.HasPrefix(in[at:], []byte("1 ")) {
			if m, err := lib5424.Parse(in[at:]); err == nil {
				s := scanRFC5424(in, at+2)
				full := m.(*rfc5424.SyslogMessage)
				if !s.agrees(in, full) || full.Message == nil && s.msg != len(in) ||
					full.Message != nil && *full.Message != string(in[s.msg:]) {
					t.Fatalf("go-syslog accepts %q, the scan disagrees: %+v", in, s)
				}
				// The parser gives go-syslog only the header and
				// STRUCTURED-DATA: it must accept those as well.
				if !s.sdOK {
					t.Fatalf("go-syslog accepts %q, the scan finds no end of its STRUCTURED-DATA", in)
				}
				hm, err := lib5424.Parse(in[at:s.sd.to])
				if err != nil || !s.agrees(in, hm.(*rfc5424.SyslogMessage)) {
					t.Fatalf("go-syslog accepts %q but not its header and STRUCTURED-DATA %q: %v", in, in[at:s.sd.to], err)
				}
			}
		}

		// A fresh parser gives the same: no state leaks between messages.
		var fresh record.Record
		(&Parser{Location: time.UTC}).Parse(in, recv, &fresh)
		if got, want := fromRecord(&fresh), fromRecord(&r); got.String() != want.String() {
			t.Fatalf("fresh parser:\n got %v\nwant %v", got, want)
		}

		// Where go-syslog's result was used, the scans alone find the
		// same fields.
		if r.Flags.Has(record.FlagParseError) {
			return
		}
		var scan record.Record
		(&Parser{Location: time.UTC, libraryOff: true}).Parse(in, recv, &scan)
		got, want := fromRecord(&scan), fromRecord(&r)
		if r.Format == record.FormatRFC5424 { // the scans do not validate RFC 5424
			got.flags, got.reason = want.flags, want.reason
		}
		if got.String() != want.String() {
			t.Fatalf("scans alone:\n got %v\nwant %v", got, want)
		}
	})
}

// naiveScanSD is scanSD one byte at a time.
func naiveScanSD(b []byte, i int) (end int, ok bool) {
	if i >= len(b) {
		return i, false
	}
	if b[i] == '-' {
		return i + 1, true
	}
	if b[i] != '[' {
		return i, false
	}
	for i < len(b) && b[i] == '[' {
		quoted := false
		for i++; ; i++ {
			if i >= len(b) {
				return i, false
			}
			c := b[i]
			if quoted && c == '\\' {
				i++
			} else if c == '"' {
				quoted = !quoted
			} else if !quoted && c == ']' {
				break
			}
		}
		i++
	}
	return i, true
}

// checkRecord checks the invariants of a parsed record.
func checkRecord(t *testing.T, in []byte, r *record.Record) {
	t.Helper()
	if !bytes.Equal(r.Raw, in) || (len(in) > 0 && &r.Raw[0] == &in[0]) {
		t.Fatalf("Raw %q is not a copy of the input", r.Raw)
	}
	parseErr := r.Flags.Has(record.FlagParseError)
	if !parseErr && r.Format != record.FormatRFC3164 && r.Format != record.FormatRFC5424 {
		t.Fatalf("no parse error but format %v", r.Format)
	}
	if parseErr != (r.Reason != record.ReasonNone) {
		t.Fatalf("flags %b with reason %q", r.Flags, r.Reason)
	}
	if r.EventTime.IsZero() != r.Flags.Has(record.FlagNoEventTime) {
		t.Fatalf("event time %v with flags %b", r.EventTime, r.Flags)
	}
	if !r.Flags.Has(record.FlagHasPRI) && (r.Facility != record.DefaultFacility || r.Severity != record.DefaultSeverity) {
		t.Fatalf("no PRI but %v.%v", r.Facility, r.Severity)
	}
	if r.Facility > 23 || r.Severity > 7 {
		t.Fatalf("PRI %v.%v", r.Facility, r.Severity)
	}
	// Text is never made up or rewritten: every field is in the raw bytes.
	for name, s := range map[string]string{"Hostname": r.Hostname, "AppName": r.AppName, "ProcID": r.ProcID,
		"MsgID": r.MsgID, "StructuredData": r.StructuredData, "Message": r.Message} {
		if !bytes.Contains(in, []byte(s)) {
			t.Fatalf("%s %q is not in the input", name, s)
		}
	}
	// A search for the text finds the message: a raw record keeps all of it.
	if r.Format == record.FormatRaw && len(r.Message) < len(in)-5-len(bom) {
		t.Fatalf("raw record with message %q", r.Message)
	}
}

// modelFrames is a deliberately naive FrameReader over the whole input: the
// frames, whether octet framing broke, the bytes discarded.
func modelFrames(in []byte, max int) (out []frameOut, framingErr bool, discarded int) {
	deliver := func(content []byte) {
		switch {
		case len(content) == 0:
			out = append(out, empty)
		case len(content) > max:
			out = append(out, truncated(string(content[:max])))
			discarded += len(content) - max
		default:
			out = append(out, line(string(content)))
		}
	}
	for i := 0; i < len(in); {
		if c := in[i]; c >= '1' && c <= '9' {
			j := i
			for j < len(in) && isDigit(in[j]) {
				j++
			}
			// The digits and the space must fit the read buffer.
			if j+1 < len(in) && in[j] == ' ' && in[j+1] == '<' && j-i < readBufferBytes {
				digits := j - i
				if digits > maxCountDigits {
					keep := min(digits, max)
					out = append(out, frameOut{string(in[i : i+keep]), digits > keep, record.ReasonFraming})
					return out, true, discarded + digits - keep
				}
				n, _ := strconv.Atoi(string(in[i:j]))
				start := j + 1
				avail := len(in) - start
				want := min(n, max)
				if avail < want {
					return append(out, broken(string(in[start:]))), true, discarded
				}
				if n > want {
					out = append(out, truncated(string(in[start:start+want])))
					if avail < n {
						return out, true, discarded + avail - want
					}
					discarded += n - want
				} else {
					out = append(out, line(string(in[start:start+n])))
				}
				i = start + n
				continue
			}
		}
		k := bytes.IndexByte(in[i:], '\n')
		if k < 0 {
			deliver(in[i:])
			break
		}
		deliver(bytes.TrimSuffix(in[i:i+k], []byte("\r")))
		i += k + 1
	}
	return out, false, discarded
}

func FuzzFrameReader(f *testing.F) {
	for _, s := range []string{
		"5 hello<34>x\n11 hello world<13>last",
		"a\r\nb\n\r\n\nc\r\r\nd\r",
		"4\x00  \n\x00\x00\n<13>a\x00b\n",
		"12<34>x\n123\n99", "0 \n05 hello\n0\n",
		"<1>a\n10 hello", "5 ",
		"12345678901234567890 <13>x\n<13>y\n", "9999999999 abcdefgh",
		"8 abcdefgh5 hello", "abcdefgh\nxy\nabcd\r\nabcde\r\n", "abcd\r",
		strings.Repeat("x", 300) + "\r\n3 abc",
	} {
		f.Add([]byte(s), uint16(4))
		f.Add([]byte(s), uint16(100))
	}
	f.Fuzz(func(t *testing.T, in []byte, max16 uint16) {
		max := int(max16%512) + 1
		want, wantFraming, wantDiscarded := modelFrames(in, max)
		for _, r := range []io.Reader{bytes.NewReader(in), iotest.OneByteReader(bytes.NewReader(in))} {
			got, err, discarded := readFrames(r, max)
			for _, fr := range got {
				if len(fr.data) > max {
					t.Fatalf("frame of %d bytes, limit %d", len(fr.data), max)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%T frames\n got %v\nwant %v", r, got, want)
			}
			if framing := err != io.EOF; framing != wantFraming {
				t.Fatalf("%T: error %v, want framing error %v", r, err, wantFraming)
			}
			if discarded != int64(wantDiscarded) {
				t.Fatalf("%T: discarded %d, want %d", r, discarded, wantDiscarded)
			}
		}
	})
}
