package record

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"
)

// JSON is the JSON form of a stored record, as the query API returns it.
// Empty fields are omitted.
type JSON struct {
	ID          string            `json:"id"`
	Received    string            `json:"received"`
	Time        string            `json:"time"`
	Host        string            `json:"host,omitempty"`
	App         string            `json:"app,omitempty"`
	ProcID      string            `json:"procid,omitempty"`
	MsgID       string            `json:"msgid,omitempty"`
	Facility    string            `json:"facility"`
	Severity    string            `json:"severity"`
	SD          string            `json:"sd,omitempty"`
	Message     string            `json:"message"`
	Source      string            `json:"source,omitempty"`
	Peer        string            `json:"peer,omitempty"`
	Transport   string            `json:"transport"`
	Format      string            `json:"format"`
	Malformed   string            `json:"malformed,omitempty"`
	Truncated   bool              `json:"truncated,omitempty"`
	NoEventTime bool              `json:"no_event_time,omitempty"`
	Raw         string            `json:"raw,omitempty"`
	RawBase64   string            `json:"raw_base64,omitempty"`
	Fields      map[string]string `json:"fields,omitempty"`
}

// ToJSON returns the JSON form of r. Raw bytes that are valid UTF-8 appear as
// "raw"; others as "raw_base64", so they read back byte for byte.
func (r *Record) ToJSON() JSON {
	j := JSON{
		ID:        r.ID.String(),
		Received:  r.Received().Format(time.RFC3339Nano),
		Time:      r.EventTime.UTC().Format(time.RFC3339Nano),
		Host:      r.Hostname,
		App:       r.AppName,
		ProcID:    r.ProcID,
		MsgID:     r.MsgID,
		Facility:  r.Facility.String(),
		Severity:  r.Severity.String(),
		SD:        r.StructuredData,
		Message:   r.Message,
		Source:    r.Source,
		Peer:      r.Peer,
		Transport: r.Transport.String(),
		Format:    r.Format.String(),
	}
	if r.Flags.Has(FlagParseError) || r.Reason != ReasonNone {
		j.Malformed = r.Reason.String()
		if j.Malformed == "" {
			j.Malformed = "unknown"
		}
	}
	j.Truncated = r.Flags.Has(FlagTruncated)
	j.NoEventTime = r.Flags.Has(FlagNoEventTime)
	if len(r.Raw) > 0 {
		if utf8.Valid(r.Raw) {
			j.Raw = string(r.Raw)
		} else {
			j.RawBase64 = base64.StdEncoding.EncodeToString(r.Raw)
		}
	}
	if len(r.Fields) > 0 {
		j.Fields = make(map[string]string, len(r.Fields))
		for _, f := range r.Fields {
			j.Fields[f.Key] = f.Value
		}
	}
	return j
}

// RawBytes returns the raw bytes of a JSON record.
func (j *JSON) RawBytes() ([]byte, error) {
	if j.RawBase64 != "" {
		return base64.StdEncoding.DecodeString(j.RawBase64)
	}
	return []byte(j.Raw), nil
}

// Limits on records that arrive as JSON.
const (
	MaxFieldKeyBytes   = 256
	MaxFieldValueBytes = 64 << 10
)

// ErrBadJSON is returned for an NDJSON line that is not an acceptable record.
var ErrBadJSON = errors.New("record: bad JSON record")

// ParseJSON fills r from one JSON object, the input form of the HTTP API:
//
//	time/timestamp   RFC 3339 string, or a Unix time number in seconds
//	                 (milliseconds, microseconds or nanoseconds are recognised by magnitude)
//	host/hostname, app/app_name/appname, procid, msgid, message/msg, sd/structured_data
//	severity/level   name or number 0-7; facility: name or number 0-23
//	fields           an object of extra fields
//
// Every other key is kept as an extra field. Non-string values are kept as
// their compact JSON text. r's ID, Source, Peer and Transport are left for the
// caller.
func ParseJSON(line []byte, r *Record) error {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return fmt.Errorf("%w: %v", ErrBadJSON, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: more than one JSON value on the line", ErrBadJSON)
	}
	if obj == nil {
		return fmt.Errorf("%w: not a JSON object", ErrBadJSON)
	}
	*r = Record{Format: FormatJSON, Facility: DefaultFacility, Severity: DefaultSeverity, Flags: FlagNoEventTime}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic: aliases resolve the same way every time
	for _, k := range keys {
		if err := r.setJSONKey(k, obj[k]); err != nil {
			return fmt.Errorf("%w: key %q: %v", ErrBadJSON, k, err)
		}
	}
	if len(r.Fields) > MaxFields {
		return fmt.Errorf("%w: %d extra fields (at most %d)", ErrBadJSON, len(r.Fields), MaxFields)
	}
	return nil
}

func (r *Record) setJSONKey(k string, v json.RawMessage) error {
	str := func() (string, error) { return jsonText(v) }
	var err error
	switch k {
	case "time", "timestamp":
		var t time.Time
		if t, err = jsonTime(v); err == nil && !t.IsZero() {
			r.EventTime = t
			r.Flags &^= FlagNoEventTime
		}
	case "host", "hostname":
		r.Hostname, err = str()
	case "app", "app_name", "appname":
		r.AppName, err = str()
	case "procid":
		r.ProcID, err = str()
	case "msgid":
		r.MsgID, err = str()
	case "message", "msg":
		r.Message, err = str()
	case "sd", "structured_data":
		r.StructuredData, err = str()
	case "severity", "level":
		var s string
		if s, err = str(); err == nil {
			r.Severity, err = ParseSeverity(s)
		}
	case "facility":
		var s string
		if s, err = str(); err == nil {
			r.Facility, err = ParseFacility(s)
		}
	case "fields":
		var m map[string]json.RawMessage
		if err = json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("want an object of fields")
		}
		for fk, fv := range m {
			if err = r.setField(fk, fv); err != nil {
				return err
			}
		}
	default:
		err = r.setField(k, v)
	}
	return err
}

func (r *Record) setField(k string, v json.RawMessage) error {
	if string(v) == "null" {
		return nil
	}
	if k == "" || len(k) > MaxFieldKeyBytes {
		return fmt.Errorf("field name must have 1 to %d bytes", MaxFieldKeyBytes)
	}
	s, err := jsonText(v)
	if err != nil {
		return err
	}
	if len(s) > MaxFieldValueBytes {
		return fmt.Errorf("field %q is longer than %d bytes", k, MaxFieldValueBytes)
	}
	r.SetField(k, s)
	return nil
}

// jsonText returns a JSON string's value, or the compact text of any other value.
func jsonText(v json.RawMessage) (string, error) {
	if len(v) > 0 && v[0] == '"' {
		var s string
		err := json.Unmarshal(v, &s)
		return s, err
	}
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return "", err
	}
	return b.String(), nil
}

func jsonTime(v json.RawMessage) (time.Time, error) {
	if len(v) > 0 && v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return time.Time{}, err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("time %q is not RFC 3339", s)
		}
		return t, nil
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 9e18 {
		return time.Time{}, fmt.Errorf("time %s is neither RFC 3339 nor a Unix time", v)
	}
	switch {
	case f >= 1e17: // nanoseconds
		return time.Unix(0, int64(f)).UTC(), nil
	case f >= 1e14: // microseconds
		return time.UnixMicro(int64(f)).UTC(), nil
	case f >= 1e11: // milliseconds
		return time.UnixMilli(int64(f)).UTC(), nil
	default:
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	}
}
