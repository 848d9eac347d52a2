package record

import (
	"sort"
	"time"
)

// Field is an extra key/value carried by a record that arrived as JSON (the
// output of an enrichment pipeline: service, env, trace id...).
type Field struct {
	Key   string
	Value string
}

// Record is one log line.
//
// Strings that occur verbatim in Raw (hostname, app-name, message...) are
// stored as references into Raw, so keeping the raw bytes of every syslog line
// costs little more than keeping its parsed fields.
type Record struct {
	// ID is assigned once by the peer that first receives the line.
	ID ID
	// EventTime is the time in the message, or the receive time when the
	// message has none or it does not parse (FlagNoEventTime is then set).
	EventTime time.Time

	Facility  Facility
	Severity  Severity
	Format    Format
	Transport Transport
	Flags     Flags
	// Reason says why the message is malformed (ReasonNone when it is not).
	Reason Reason

	Hostname       string
	AppName        string
	ProcID         string
	MsgID          string
	StructuredData string // RFC 5424 STRUCTURED-DATA as sent, "" for none
	Message        string

	// Source is the sender's address ("ip:port").
	Source string
	// Peer is the name of the peer that received the line.
	Peer string
	// Raw holds the bytes as received, for every syslog line (parsed or not).
	// Records that arrive as JSON have no raw bytes.
	Raw []byte
	// Fields holds extra fields, sorted by key, keys unique.
	Fields []Field
}

// Received returns the receive time (the time carried by the ID).
func (r *Record) Received() time.Time { return r.ID.Time() }

// Field returns the value of an extra field.
func (r *Record) Field(key string) (string, bool) {
	i := sort.Search(len(r.Fields), func(i int) bool { return r.Fields[i].Key >= key })
	if i < len(r.Fields) && r.Fields[i].Key == key {
		return r.Fields[i].Value, true
	}
	return "", false
}

// SetField sets an extra field, keeping Fields sorted and unique.
func (r *Record) SetField(key, value string) {
	i := sort.Search(len(r.Fields), func(i int) bool { return r.Fields[i].Key >= key })
	if i < len(r.Fields) && r.Fields[i].Key == key {
		r.Fields[i].Value = value
		return
	}
	r.Fields = append(r.Fields, Field{})
	copy(r.Fields[i+1:], r.Fields[i:])
	r.Fields[i] = Field{Key: key, Value: value}
}

// Malformed reports whether the record is flagged as not parsing cleanly.
func (r *Record) Malformed() bool { return r.Flags.Has(FlagParseError) || r.Flags.Has(FlagTruncated) }
