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
