package syslog

import (
	"bytes"
	"time"

	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/logmesh/logmesh/record"
)

// RFC 5424 header fields after VERSION, in order.
const (
	fTimestamp = iota
	fHostname
	fAppName
	fProcID
	fMsgID
	numHeaderFields
)

// scan5424 is the structure of an RFC 5424 message found by splitting it at
// spaces and walking its STRUCTURED-DATA; it checks no character classes or
// lengths (go-syslog does), so it finds the fields of messages go-syslog
// rejects.
type scan5424 struct {
	fields  [numHeaderFields]span
	nfields int  // header fields found
	sd      span // STRUCTURED-DATA as sent, valid when sdOK
	sdOK    bool
	msg     int // start of MSG (len of the message when there is none)
}

// scanRFC5424 scans b from i, the first byte after "1 ".
func scanRFC5424(b []byte, i int) scan5424 {
	var s scan5424
	for s.nfields < numHeaderFields {
		j := bytes.IndexByte(b[i:], ' ')
		if j <= 0 { // no separator, or an empty field
			return s
		}
		s.fields[s.nfields] = span{i, i + j}
		s.nfields++
		i += j + 1
	}
	end, ok := scanSD(b, i)
	s.sd = span{i, end}
	switch {
	case !ok:
	case end == len(b):
		s.sdOK, s.msg = true, end
	case b[end] == ' ':
		s.sdOK, s.msg = true, end+1
	}
	return s
}

// scanSD returns the end of the STRUCTURED-DATA that starts at b[i]: "-" or
// one or more "[...]" elements. Inside an element a ']' ends it unless it is
// within a quoted PARAM-VALUE, where a backslash escapes the next byte.
func scanSD(b []byte, i int) (end int, ok bool) {
	if i >= len(b) {
		return i, false
	}
	switch b[i] {
	case '-':
		return i + 1, true
	case '[':
	default:
		return i, false
	}
	for i < len(b) && b[i] == '[' {
		for i++; i < len(b) && b[i] != ']'; i++ {
			if b[i] == '"' {
				if i = closingQuote(b, i+1); i < 0 {
					return len(b), false
				}
			}
		}
		if i >= len(b) {
			return i, false // unterminated
		}
		i++ // past ']'
	}
	return i, true
}

// closingQuote returns the index of the '"' that ends the PARAM-VALUE
// starting at b[i], or -1. A quote is escaped when an odd number of
// backslashes precede it within the value.
func closingQuote(b []byte, i int) int {
	for from := i; ; {
		j := bytes.IndexByte(b[from:], '"')
		if j < 0 {
			return -1
		}
		j += from
		k := j
		for k > i && b[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 0 {
			return j
		}
		from = j + 1
	}
}

// agrees reports whether go-syslog's result holds exactly the header fields
// of the scan. It is false when the scan found no end of the
// STRUCTURED-DATA, so a result it accepts was parsed without the MSG (see
// parse5424), and MSG is not compared.
func (s *scan5424) agrees(b []byte, m *rfc5424.SyslogMessage) bool {
	if s.nfields != numHeaderFields || !s.sdOK {
		return false
	}
	ts := b[s.fields[fTimestamp].from:s.fields[fTimestamp].to]
	if (len(ts) == 1 && ts[0] == '-') != (m.Timestamp == nil) {
		return false
	}
	return sameField(b, s.fields[fHostname], m.Hostname) &&
		sameField(b, s.fields[fAppName], m.Appname) &&
		sameField(b, s.fields[fProcID], m.ProcID) &&
		sameField(b, s.fields[fMsgID], m.MsgID)
}

// parse5424 fills r from the RFC 5424 message msg whose VERSION starts at
// bodyAt.
func (p *Parser) parse5424(msg []byte, bodyAt int, r *record.Record) {
	s := scanRFC5424(msg, bodyAt+2)
	if !p.fastOff && s.plain(msg) && fill5424(msg, &s, r) {
		return
	}
	var m *rfc5424.SyslogMessage
	// MSG is *OCTET here (see Parser): once the scan has found where it
	// starts, go-syslog gets only the header and STRUCTURED-DATA, and does
	// not walk and copy the longest part of the message for nothing.
	in := msg[bodyAt:]
	if s.sdOK {
		in = msg[bodyAt:s.sd.to]
	}
	out, err := p.library(p.p5424, in)
	if out != nil {
		m, _ = out.(*rfc5424.SyslogMessage)
	}
	if err == nil && m != nil && s.agrees(msg, m) {
		r.Format = record.FormatRFC5424
		r.Hostname, r.AppName = deref(m.Hostname), deref(m.Appname)
		r.ProcID, r.MsgID = deref(m.ProcID), deref(m.MsgID)
		if sd := s.sd; sd.to-sd.from != 1 || msg[sd.from] != '-' {
			r.StructuredData = string(msg[sd.from:sd.to])
		}
		r.Message = stripBOM(string(msg[s.msg:]))
		if m.Timestamp != nil {
			r.EventTime = *m.Timestamp
		}
		return
	}
	p.recover5424(msg, bodyAt, &s, m, r)
}

// recover5424 fills r from the scan when go-syslog failed or disagrees.
func (p *Parser) recover5424(msg []byte, bodyAt int, s *scan5424, m *rfc5424.SyslogMessage, r *record.Record) {
	text := string(msg)
	hf := func(i int) string {
		if i >= s.nfields {
			return ""
		}
		return field(text, s.fields[i])
	}
	r.Hostname, r.AppName, r.ProcID, r.MsgID = hf(fHostname), hf(fAppName), hf(fProcID), hf(fMsgID)
	switch {
	case s.nfields < numHeaderFields:
		r.Format = record.FormatRaw
		r.Message = stripBOM(text[bodyAt:])
	case !s.sdOK:
		r.Format = record.FormatRFC5424
		r.Message = stripBOM(text[s.sd.from:])
	default:
		r.Format = record.FormatRFC5424
		r.StructuredData = field(text, s.sd)
		r.Message = stripBOM(text[s.msg:])
	}

	badTS := false
	if ts := hf(fTimestamp); ts != "" {
		if m != nil && m.Timestamp != nil {
			r.EventTime = *m.Timestamp
		} else {
			// go-syslog rejected it (m holds the fields before the
			// error) or failed. Still use a timestamp that is
			// unambiguous but breaks RFC 5424's grammar (more than six
			// fraction digits); :60 and garbage stay unusable.
			t, perr := time.Parse(time.RFC3339Nano, ts)
			if perr == nil {
				r.EventTime = t
			}
			badTS = m != nil || perr != nil
		}
	}
	// Also when go-syslog accepted the message but its fields are not the
	// scan's (FuzzParse finds no such message): which one is right is
	// unknown, so the record is flagged.
	r.Flags |= record.FlagParseError
	r.Reason = record.ReasonBadHeader
	if badTS {
		r.Reason = record.ReasonBadTimestamp
	}
}

// plain reports whether the header and STRUCTURED-DATA of a scanned message
// are of a shape go-syslog accepts, checked here without it: every header
// field within RFC 5424's characters and lengths, the timestamp
// "YYYY-MM-DDThh:mm:ss[.frac]" with its offset, each SD-NAME within its
// characters and lengths, no SD-ID twice, and parameter values of printable
// ASCII without a backslash. It is sound, not complete: whatever it accepts,
// go-syslog accepts with the fields the scan found (FuzzParsePlain), and
// what it does not vouch for (escapes, UTF-8 in a value, a timestamp
// time.Parse rejects) goes to go-syslog as before. go-syslog costs about six
// times as much per line and a kilobyte of garbage (BenchmarkParse5424).
func (s *scan5424) plain(b []byte) bool {
	if s.nfields != numHeaderFields || !s.sdOK {
		return false
	}
	ts := b[s.fields[fTimestamp].from:s.fields[fTimestamp].to]
	if !(len(ts) == 1 && ts[0] == '-') && !timestampShape(ts) {
		return false
	}
	for f, most := range [numHeaderFields]int{fHostname: 255, fAppName: 48, fProcID: 128, fMsgID: 32} {
		if f == fTimestamp {
			continue
		}
		v := b[s.fields[f].from:s.fields[f].to]
		if len(v) > most {
			return false
		}
		for _, c := range v {
			if c < '!' || c > '~' {
				return false
			}
		}
	}
	return plainSD(b[s.sd.from:s.sd.to])
}

// fill5424 fills r from a message plain vouched for, as parse5424 does from
// go-syslog's result. It reports false, and leaves r alone, if the timestamp
// names a day its month does not have: go-syslog then decides.
func fill5424(msg []byte, s *scan5424, r *record.Record) bool {
	text := string(msg) // every field shares it
	var t time.Time
	if ts := s.fields[fTimestamp]; ts.to-ts.from != 1 {
		var ok bool
		if t, ok = shapedTime(msg[ts.from:ts.to], time.Local); !ok {
			return false // February 30th: go-syslog decides
		}
	}
	r.Format = record.FormatRFC5424
	r.Hostname, r.AppName = field(text, s.fields[fHostname]), field(text, s.fields[fAppName])
	r.ProcID, r.MsgID = field(text, s.fields[fProcID]), field(text, s.fields[fMsgID])
	r.StructuredData = field(text, s.sd)
	r.Message = stripBOM(text[s.msg:])
	r.EventTime = t
	return true
}

// shapedTime returns the time of a timestamp of timestampShape, as
// time.ParseInLocation(rfc5424.RFC3339MICRO, ts, local) gives it (and so
// time.Parse, for local time.Local, as go-syslog calls it): in UTC for "Z";
// for an offset, in local where local has that offset at that time, else in
// a fixed zone of that offset. It reports false where the month has no such
// day. It takes a fifth of time.Parse's time.
func shapedTime(ts []byte, local *time.Location) (time.Time, bool) {
	n := func(at, digits int) int {
		v := 0
		for _, c := range ts[at : at+digits] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	const date = len("2006-01-02T15:04:05")
	year, month, day := n(0, 4), time.Month(n(5, 2)), n(8, 2)
	if day > daysIn(month, year) {
		return time.Time{}, false
	}
	zone := len(ts) - 1 // "Z"
	if ts[zone] != 'Z' {
		zone = len(ts) - len("+07:00")
	}
	nsec := 0
	if frac := ts[date:zone]; len(frac) > 0 { // "." and one to six digits
		nsec = n(date+1, len(frac)-1)
		for range 10 - len(frac) {
			nsec *= 10
		}
	}
	t := time.Date(year, month, day, n(11, 2), n(14, 2), n(17, 2), nsec, time.UTC)
	if ts[zone] == 'Z' {
		return t, true
	}
	offset := (n(zone+1, 2)*60 + n(zone+4, 2)) * 60
	if ts[zone] == '-' {
		offset = -offset
	}
	t = t.Add(-time.Duration(offset) * time.Second)
	if _, o := t.In(local).Zone(); o == offset {
		return t.In(local), true
	}
	return t.In(time.FixedZone("", offset)), true
}

// daysIn returns the number of days of month in year.
func daysIn(month time.Month, year int) int {
	if month == time.February {
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	}
	return 31 - int((month-1)%7%2)
}

// timestampShape reports whether ts is "YYYY-MM-DDThh:mm:ss", an optional
// fraction of one to six digits, and "Z" or "+hh:mm" / "-hh:mm", each number
// within RFC 5424's ranges (a day of the month up to 31 whatever the month:
// time.Parse checks the rest).
func timestampShape(ts []byte) bool {
	const date = len("2006-01-02T15:04:05")
	if len(ts) < date+1 {
		return false
	}
	num := func(ts []byte, at int, lo, hi byte) bool {
		a, b := ts[at], ts[at+1]
		if a < '0' || a > '9' || b < '0' || b > '9' {
			return false
		}
		v := (a-'0')*10 + b - '0'
		return v >= lo && v <= hi
	}
	if !num(ts, 0, 0, 99) || !num(ts, 2, 0, 99) || ts[4] != '-' || !num(ts, 5, 1, 12) || ts[7] != '-' ||
		!num(ts, 8, 1, 31) || ts[10] != 'T' || !num(ts, 11, 0, 23) || ts[13] != ':' || !num(ts, 14, 0, 59) ||
		ts[16] != ':' || !num(ts, 17, 0, 59) {
		return false
	}
	rest := ts[date:]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && n <= 6 && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 {
			return false
		}
		rest = rest[n:]
	}
	if len(rest) == 1 {
		return rest[0] == 'Z'
	}
	if len(rest) != 6 || (rest[0] != '+' && rest[0] != '-') || rest[3] != ':' {
		return false
	}
	return num(rest, 1, 0, 23) && num(rest, 4, 0, 59)
}

// plainSD reports whether sd is "-" or elements of SD-NAMEs and parameter
// values of printable ASCII without '"', '\' or ']', no SD-ID twice (at
// most 16 elements: more go to go-syslog).
func plainSD(sd []byte) bool {
	if len(sd) == 1 && sd[0] == '-' {
		return true
	}
	var ids [16][]byte
	n := 0
	for i := 0; i < len(sd); {
		if sd[i] != '[' || n == len(ids) {
			return false
		}
		j := sdName(sd, i+1)
		if j < 0 {
			return false
		}
		id := sd[i+1 : j]
		for _, seen := range ids[:n] {
			if bytes.Equal(seen, id) {
				return false
			}
		}
		ids[n] = id
		n++
		i = j
		for i < len(sd) && sd[i] == ' ' {
			if i = sdName(sd, i+1); i < 0 || i+1 >= len(sd) || sd[i] != '=' || sd[i+1] != '"' {
				return false
			}
			for i += 2; i < len(sd) && sd[i] >= ' ' && sd[i] <= '~' && sd[i] != '"' && sd[i] != '\\' && sd[i] != ']'; i++ {
			}
			if i >= len(sd) || sd[i] != '"' {
				return false
			}
			i++
		}
		if i >= len(sd) || sd[i] != ']' {
			return false
		}
		i++
	}
	return n > 0
}

// sdName returns the end of the SD-NAME (1 to 32 printable ASCII bytes but
// '=', ' ', ']' and '"') at sd[i], or -1.
func sdName(sd []byte, i int) int {
	j := i
	for j < len(sd) && j-i < 33 {
		c := sd[j]
		if c < '!' || c > '~' || c == '=' || c == ']' || c == '"' {
			break
		}
		j++
	}
	if j == i || j-i > 32 {
		return -1
	}
	return j
}
