package syslog

import (
	"bytes"
	"time"

	"github.com/leodido/go-syslog/v4/rfc3164"

	"github.com/logmesh/logmesh/record"
)

// scan3164 is the structure of an RFC 3164 message:
//
//	PRI *SP TIMESTAMP 1*SP [HOSTNAME 1*SP] [TAG ["[" PID "]"] ":" SP] MSG
//
// where TIMESTAMP is "Mmm dd hh:mm:ss[.frac]" (any letter case; the day may
// be "d", " d" or "dd") or an RFC 3339 time, HOSTNAME is 1-255 visible ASCII bytes without
// ':' and is only taken when more text follows it, TAG is 1-48 visible ASCII
// bytes without ':' or '[', and MSG is any bytes. It is the grammar go-syslog
// implements, resolved the way go-syslog intends to.
type scan3164 struct {
	ts     span
	stamp  bool // ts is a Stamp (no year, no zone); else RFC 3339
	tsLike bool // the text after the PRI starts like a timestamp
	ok     bool // a timestamp token was found

	host, tag, pid span
	msg            int
}

var monthNames = [...]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

// scanRFC3164 scans b from i, the first byte after the PRI.
func scanRFC3164(b []byte, i int) scan3164 {
	var s scan3164
	for i < len(b) && b[i] == ' ' {
		i++
	}
	switch {
	case startsWithMonth(b[i:]):
		s.tsLike = true
		if end, ok := stampEnd(b, i); ok {
			s.ts, s.stamp, s.ok = span{i, end}, true, true
		}
	case startsWithRFC3339(b[i:]):
		s.tsLike, s.ok = true, true
		s.ts = span{i, tokenEnd(b, i)}
	}
	if !s.ok {
		return s
	}
	// A timestamp running into other text ("22:14:15:") is one bad token.
	s.ts.to = tokenEnd(b, s.ts.to)
	i = skipSpaces(b, s.ts.to)
	if h := hostnameEnd(b, i); h > i {
		if next := skipSpaces(b, h); next < len(b) {
			s.host = span{i, h}
			i = next
		}
	}
	s.tag, s.pid, s.msg = scanTag(b, i)
	return s
}

func startsWithMonth(b []byte) bool {
	if len(b) < 5 || b[3] != ' ' || (b[4] != ' ' && !isDigit(b[4])) {
		return false
	}
	for _, m := range monthNames {
		if b[0]|0x20 == m[0] && b[1]|0x20 == m[1] && b[2]|0x20 == m[2] {
			return true
		}
	}
	return false
}

// startsWithRFC3339 reports whether b starts with "dddd-dd-ddT": a date
// followed by a space ("2024-01-02 10:00:00,123 INFO ...") is application
// text, not a syslog timestamp.
func startsWithRFC3339(b []byte) bool {
	return len(b) > 10 && isDigits(b[0:4]) && b[4] == '-' && isDigits(b[5:7]) && b[7] == '-' &&
		isDigits(b[8:10]) && b[10] == 'T'
}

// stampEnd matches "Mmm" SP (SP d | d | dd) SP hh:mm:ss [.1*9DIGIT] at b[i].
func stampEnd(b []byte, i int) (int, bool) {
	j := i + 4
	if b[j] == ' ' {
		j++
	}
	d := j
	for j < len(b) && j-d < 2 && isDigit(b[j]) {
		j++
	}
	if j == d || j+9 > len(b) || b[j] != ' ' {
		return 0, false
	}
	c := b[j+1 : j+9]
	if !isDigit(c[0]) || !isDigit(c[1]) || c[2] != ':' || !isDigit(c[3]) || !isDigit(c[4]) ||
		c[5] != ':' || !isDigit(c[6]) || !isDigit(c[7]) {
		return 0, false
	}
	j += 9
	if j+1 < len(b) && b[j] == '.' && isDigit(b[j+1]) {
		f := j + 1
		for f < len(b) && f-j <= 9 && isDigit(b[f]) {
			f++
		}
		j = f
	}
	return j, true
}

// hostnameEnd returns the end of the hostname token starting at b[i], or i
// when there is none. The token must be followed by a space.
func hostnameEnd(b []byte, i int) int {
	j := i
	for j < len(b) && j-i < 255 && b[j] > ' ' && b[j] < 0x7f && b[j] != ':' {
		j++
	}
	if j == i || j >= len(b) || b[j] != ' ' {
		return i
	}
	return j
}

// scanTag matches TAG ["[" PID "]"] ":" SP at b[i]. Without a match the
// message starts at i.
func scanTag(b []byte, i int) (tag, pid span, msg int) {
	j := i
	for j < len(b) && j-i < 49 && b[j] > ' ' && b[j] < 0x7f && b[j] != ':' && b[j] != '[' {
		j++
	}
	if j == i || j-i > 48 || j >= len(b) {
		return span{}, span{}, i
	}
	tag = span{i, j}
	if b[j] == '[' {
		p := j + 1
		for j = p; j < len(b) && pidByte(b[j]); j++ {
		}
		if j >= len(b) || b[j] != ']' {
			return span{}, span{}, i
		}
		pid = span{p, j}
		j++
	}
	if j+1 >= len(b) || b[j] != ':' || b[j+1] != ' ' {
		return span{}, span{}, i
	}
	return tag, pid, j + 2
}

// pidByte reports whether c may appear between the brackets after a tag.
func pidByte(c byte) bool {
	return c == '\t' || c == '\n' || c == '\r' || (c >= ' ' && c < 0x7f && c != '[' && c != ']') || c >= 0x80
}

// agrees reports whether go-syslog's result holds exactly the fields of the
// scan.
func (s *scan3164) agrees(b []byte, m *rfc3164.SyslogMessage) bool {
	return s.ok && m.Timestamp != nil &&
		sameField(b, s.host, m.Hostname) &&
		sameField(b, s.tag, m.Appname) &&
		sameField(b, s.pid, m.ProcID) &&
		(m.Message == nil && s.msg == len(b) || m.Message != nil && *m.Message == string(b[s.msg:]))
}

// parse3164 fills r from the RFC 3164 message msg whose body (what follows the
// PRI) starts at bodyAt.
func (p *Parser) parse3164(msg []byte, bodyAt int, received time.Time, r *record.Record) {
	s := scanRFC3164(msg, bodyAt)
	// Where the scan finds the fields, go-syslog's result is used only if it
	// holds the same fields, and its timestamp is time.Parse's: it changes
	// nothing and costs three times the rest (FuzzParsePlain compares
	// both ways). It is asked only with fastOff.
	if s.ok && p.fastOff {
		out, err := p.library(p.p3164, msg[bodyAt:])
		if m, _ := out.(*rfc3164.SyslogMessage); err == nil && m != nil && s.agrees(msg, m) {
			r.Format = record.FormatRFC3164
			r.Hostname, r.AppName, r.ProcID = deref(m.Hostname), deref(m.Appname), deref(m.ProcID)
			r.Message = stripBOM(deref(m.Message))
			p.setEventTime3164(*m.Timestamp, s.stamp, received, r)
			return
		}
	}
	text := string(msg)
	if !s.ok {
		r.Format = record.FormatRaw
		r.Flags |= record.FlagParseError
		r.Reason = record.ReasonBadHeader
		if s.tsLike {
			r.Reason = record.ReasonBadTimestamp
		}
		r.Message = stripBOM(text[bodyAt:])
		return
	}
	r.Format = record.FormatRFC3164
	r.Hostname, r.AppName, r.ProcID = field(text, s.host), field(text, s.tag), field(text, s.pid)
	r.Message = stripBOM(text[s.msg:])
	layout := time.RFC3339
	if s.stamp {
		layout = time.Stamp
	}
	t, perr := time.Parse(layout, text[s.ts.from:s.ts.to])
	if perr != nil {
		r.Flags |= record.FlagParseError
		r.Reason = record.ReasonBadTimestamp
		return
	}
	p.setEventTime3164(t, s.stamp, received, r)
}

// setEventTime3164 sets the event time from a parsed timestamp; a Stamp has no
// year and no zone, so they are chosen here.
func (p *Parser) setEventTime3164(t time.Time, stamp bool, received time.Time, r *record.Record) {
	if !stamp {
		r.EventTime = t
		return
	}
	loc := p.Location
	if loc == nil {
		loc = time.Local
	}
	if et, ok := closestYear(t, received, loc); ok {
		r.EventTime = et
		return
	}
	r.Flags |= record.FlagParseError
	r.Reason = record.ReasonBadTimestamp
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isDigits(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// tokenEnd returns the index of the first space at or after i, or len(b).
func tokenEnd(b []byte, i int) int {
	if j := bytes.IndexByte(b[i:], ' '); j >= 0 {
		return i + j
	}
	return len(b)
}

func skipSpaces(b []byte, i int) int {
	for i < len(b) && b[i] == ' ' {
		i++
	}
	return i
}
