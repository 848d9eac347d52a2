package syslog

import (
	"bytes"
	"errors"
	"sync"
	"time"

	gosyslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/logmesh/logmesh/record"
)

// Parser turns one syslog message into a record.Record.
//
// The zero value is ready to use. A Parser is safe for concurrent use, but
// go-syslog serialises the calls of one Parser behind a mutex, so goroutines
// that parse at high rates (one per TCP connection, the UDP reader) should
// each own one. A Parser must not be copied after first use.
//
// Rules, in the order they are applied:
//
//   - An empty message gets ReasonEmpty.
//   - PRI: "<" 1*3DIGIT ">" with a value in 0..191. Leading zeros are
//     accepted as long as there are at most three digits ("<013>", "<000>"),
//     because RFC 5424's PRIVAL = 1*3DIGIT allows them; "<0013>", "<192>",
//     "<>" and "<1x>" are ReasonBadPRI and the message is kept raw. A message
//     that does not start with "<" is ReasonNoPRI: it gets
//     record.DefaultFacility and DefaultSeverity and is still parsed as an
//     RFC 3164 (or, if it starts with "1 ", RFC 5424) body so its timestamp,
//     host and tag are recovered when present.
//   - After the PRI, "1 " means RFC 5424 and anything else RFC 3164.
//   - NILVALUE fields ("-") become "". A UTF-8 BOM at the start of MSG is
//     removed from Message (Raw keeps it). Bytes are never replaced: invalid
//     UTF-8 and control bytes in MSG are kept as sent and are not a parse
//     error (RFC 5424's MSG is *OCTET; RFC 3164 MSG is treated the same way).
//   - A message that does not parse completely gets FlagParseError, a Reason
//     (the first problem found: ReasonNoPRI, ReasonBadPRI, ReasonBadTimestamp,
//     ReasonBadHeader), every field that could be recovered, and Format
//     FormatRaw when not even the header structure was found, in which case
//     Message holds the text after the PRI (the whole line without a valid
//     PRI).
//   - The event time is the message's timestamp; an RFC 3164 timestamp has no
//     year and gets the one that puts it closest to the receive time, in
//     Location. Without a usable timestamp EventTime stays zero and
//     FlagNoEventTime is set. Timestamps far in the past or future are kept
//     as sent. An RFC 5424 timestamp with more than six fraction digits is
//     flagged ReasonBadTimestamp but its time is used; a leap second (:60)
//     is unusable (RFC 5424 forbids it).
//
// This package's scans find every message's fields. For RFC 5424
// go-syslog's verdict on the grammar (character sets, lengths, SD-NAMEs,
// duplicate SD-IDs) decides FlagParseError, and so does any disagreement of
// its fields with the scan's; a message of the plain shape (scan5424.plain:
// the lines a fleet sends) is one go-syslog accepts with the scan's fields,
// and is not given to it. For RFC 3164, whose grammar go-syslog resolves
// wrongly in places, the scan's verdict decides, and go-syslog is not asked.
// FuzzParsePlain checks both against go-syslog.
type Parser struct {
	// Location is the time zone of RFC 3164 timestamps, which carry none.
	// nil means time.Local.
	Location *time.Location

	once  sync.Once
	p5424 gosyslog.Machine
	p3164 gosyslog.Machine
	// libraryOff makes every go-syslog call fail, so tests can compare the
	// scans with go-syslog.
	libraryOff bool
	// fastOff sends every message to go-syslog that went to it before the
	// plain paths (scan5424.plain, parse3164), so tests can compare them.
	fastOff bool
}

func (p *Parser) init() {
	p.once.Do(func() {
		// The PRI is parsed here and only the bytes after it reach
		// go-syslog, hence WithOptionalPriority.
		p.p5424 = rfc5424.NewParser(rfc5424.WithBestEffort(), rfc5424.WithOptionalPriority())
		p.p3164 = rfc3164.NewParser(rfc3164.WithBestEffort(), rfc3164.WithOptionalPriority(),
			rfc3164.WithRFC3339(), rfc3164.WithSecondFractions(), rfc3164.WithLenientDay(),
			rfc3164.WithEmbeddedNewlines())
	})
}

// Parse fills r from msg, received at the given time (used only to choose the
// year of RFC 3164 timestamps). It sets Raw (a copy of msg: msg is not
// retained), Format, Flags, Reason, Facility, Severity, Hostname, AppName,
// ProcID, MsgID, StructuredData, Message and EventTime; it leaves ID, Source,
// Peer, Transport and Fields to the caller.
func (p *Parser) Parse(msg []byte, received time.Time, r *record.Record) {
	p.init()
	reset(r)
	r.Raw = append(r.Raw[:0], msg...) // a copy, into r's buffer when it is being reused
	p.parse(msg, received, r)
	if r.EventTime.IsZero() {
		// Also for a message stamped 0001-01-01T00:00:00Z: the zero time
		// means "none" to the record encoder.
		r.Flags |= record.FlagNoEventTime
	}
}

func (p *Parser) parse(msg []byte, received time.Time, r *record.Record) {
	if len(msg) == 0 {
		r.Flags |= record.FlagParseError
		r.Reason = record.ReasonEmpty
		return
	}
	pri, bodyAt, reason := parsePRI(msg)
	switch reason {
	case record.ReasonNone:
		r.Flags |= record.FlagHasPRI
		r.Facility, r.Severity = record.Facility(pri>>3), record.Severity(pri&7)
	case record.ReasonBadPRI:
		r.Flags |= record.FlagParseError
		r.Reason = reason
		r.Message = stripBOM(string(msg))
		return
	}
	if bytes.HasPrefix(msg[bodyAt:], []byte("1 ")) {
		p.parse5424(msg, bodyAt, r)
	} else {
		p.parse3164(msg, bodyAt, received, r)
	}
	if reason == record.ReasonNoPRI {
		r.Flags |= record.FlagParseError
		r.Reason = reason
	}
}

// reset clears the fields Parse owns.
func reset(r *record.Record) {
	r.EventTime = time.Time{}
	r.Facility, r.Severity = record.DefaultFacility, record.DefaultSeverity
	r.Format = record.FormatRaw
	r.Flags = 0
	r.Reason = record.ReasonNone
	r.Hostname, r.AppName, r.ProcID, r.MsgID = "", "", "", ""
	r.StructuredData, r.Message = "", ""
}

// parsePRI parses the PRI at the start of msg. It returns the priority value,
// the offset of the first byte after the PRI and ReasonNone, or ReasonNoPRI
// (msg does not start with '<') or ReasonBadPRI.
func parsePRI(msg []byte) (pri, end int, reason record.Reason) {
	if len(msg) == 0 || msg[0] != '<' {
		return 0, 0, record.ReasonNoPRI
	}
	for i := 1; i < len(msg) && i <= 4; i++ {
		c := msg[i]
		if c == '>' {
			if i == 1 || pri > 191 {
				break
			}
			return pri, i + 1, record.ReasonNone
		}
		if c < '0' || c > '9' || i == 4 {
			break
		}
		pri = pri*10 + int(c-'0')
	}
	return 0, 0, record.ReasonBadPRI
}

// library runs a go-syslog machine, turning a panic inside the library into
// a failed parse: a third-party bug must cost one message its fields, never
// the process.
func (p *Parser) library(m gosyslog.Machine, b []byte) (msg gosyslog.Message, err error) {
	if p.libraryOff {
		return nil, errLibrary
	}
	defer func() {
		if recover() != nil {
			msg, err = nil, errLibrary
		}
	}()
	return m.Parse(b)
}

// errLibrary stands for a go-syslog call that panicked or was turned off.
var errLibrary = errors.New("syslog: go-syslog failed")

// span is a byte range [from, to) of a message.
type span struct{ from, to int }

func (s span) empty() bool { return s.to <= s.from }

// field returns the text of a header field, "" for NILVALUE or an empty span.
// text is the message as a string, so fields share one allocation.
func field(text string, s span) string {
	if s.empty() || (s.to-s.from == 1 && text[s.from] == '-') {
		return ""
	}
	return text[s.from:s.to]
}

// sameField reports whether a go-syslog field (nil for absent or NILVALUE)
// holds exactly the bytes of s.
func sameField(b []byte, s span, v *string) bool {
	tok := b[s.from:s.to]
	if len(tok) == 0 || (len(tok) == 1 && tok[0] == '-') {
		return v == nil
	}
	return v != nil && *v == string(tok)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

const bom = "\xEF\xBB\xBF"

func stripBOM(s string) string {
	if len(s) >= len(bom) && s[:len(bom)] == bom {
		return s[len(bom):]
	}
	return s
}
