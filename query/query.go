package query

import (
	"bytes"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/logmesh/logmesh/record"
)

// Query selects records.
type Query struct {
	// Since and Until bound the receive time (inclusive); zero means unbounded.
	Since, Until time.Time
	// After, when set, excludes records with IDs at or before it (in the
	// scan direction's sense: ascending scans start after it).
	After *record.ID
	// Host and App match hostname and app-name exactly when set.
	Host, App string
	// MaxSeverity keeps records at most this severe... numerically: records
	// with severity <= MaxSeverity (err keeps emerg, alert, crit, err).
	MaxSeverity *record.Severity
	// Contains is a case-sensitive substring of the message or raw line.
	Contains string
	// Word is a case-sensitive word, or phrase of words, of the message or
	// raw line, at word boundaries (record.ContainsWord): "error" finds
	// "an error:" but not "errors" or "stderr".
	Word string
	// Regex matches the message or raw line.
	Regex *regexp.Regexp
	// Fields must all equal the record's extra fields (field.NAME=value).
	Fields map[string]string
	// Limit caps the records returned; 0 means no limit.
	Limit int
	// Ascending returns oldest first; the default is newest first.
	Ascending bool
	// Local answers from the receiving peer's store only.
	Local bool
	// Count answers the number of matching records instead of the records
	// (count=true; any limit is ignored). It is not in Values: the peer a
	// client asked counts what the others stream to it.
	Count bool
}

// DefaultLimit is the limit when a query names none.
const DefaultLimit = 100

// MaxRegexBytes bounds the length of a regex parameter.
const MaxRegexBytes = 4096

// Parse reads a query from URL parameters. Relative times ("-15m", "-2h",
// "now") are resolved against now.
func Parse(v url.Values, now time.Time) (Query, error) {
	q := Query{Limit: DefaultLimit}
	var err error
	for key, vals := range v {
		val := vals[len(vals)-1]
		switch {
		case key == "since":
			q.Since, err = ParseTime(val, now)
		case key == "until":
			q.Until, err = ParseTime(val, now)
		case key == "after":
			var id record.ID
			if id, err = record.ParseID(val); err == nil {
				q.After = &id
			}
		case key == "host":
			q.Host = val
		case key == "app":
			q.App = val
		case key == "severity":
			var s record.Severity
			if s, err = record.ParseSeverity(val); err == nil {
				q.MaxSeverity = &s
			}
		case key == "contains":
			q.Contains = val
		case key == "word":
			q.Word = val
		case key == "regex":
			if len(val) > MaxRegexBytes {
				err = fmt.Errorf("is longer than %d bytes", MaxRegexBytes)
			} else if val != "" {
				q.Regex, err = regexp.Compile(val)
			}
		case key == "limit":
			q.Limit, err = strconv.Atoi(val)
			if err == nil && q.Limit < 0 {
				err = fmt.Errorf("must be 0 (no limit) or more")
			}
		case key == "order":
			switch val {
			case "asc", "oldest":
				q.Ascending = true
			case "desc", "newest", "":
				q.Ascending = false
			default:
				err = fmt.Errorf("must be asc or desc")
			}
		case key == "local":
			q.Local, err = strconv.ParseBool(val)
		case key == "count":
			q.Count, err = strconv.ParseBool(val)
		case strings.HasPrefix(key, "field."):
			name := strings.TrimPrefix(key, "field.")
			if name == "" {
				err = fmt.Errorf("names no field")
			} else {
				if q.Fields == nil {
					q.Fields = map[string]string{}
				}
				q.Fields[name] = val
			}
		default:
			// unknown parameters are refused so that a typo never silently widens a query
			return q, fmt.Errorf("unknown query parameter %q", key)
		}
		if err != nil {
			return q, fmt.Errorf("bad %s=%q: %v", key, val, err)
		}
	}
	if q.Count {
		q.Limit = 0 // a count is of every match
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return q, fmt.Errorf("until (%s) is before since (%s)", q.Until.Format(time.RFC3339), q.Since.Format(time.RFC3339))
	}
	return q, nil
}

// MaxRelativeDays bounds a relative time (-106752d used to overflow into
// an empty answer).
const MaxRelativeDays = 36500

// ParseTime accepts RFC 3339, "now", or a duration relative to now ("-15m", "-2h30m", "-7d").
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if s == "now" {
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	rel := s
	days := 0
	if i := strings.IndexByte(rel, 'd'); i > 0 { // "-7d" or "-1d12h"
		digits := strings.TrimPrefix(rel[:i], "-")
		n, err := strconv.Atoi(digits)
		if err == nil && n >= 0 && digits[0] >= '0' && digits[0] <= '9' { // not "--1d" nor "-+1d"
			days = n
			rel = rel[i+1:]
			if strings.HasPrefix(s, "-") && rel != "" {
				rel = "-" + rel
			}
		}
	}
	d := time.Duration(0)
	if rel != "" {
		var err error
		if d, err = time.ParseDuration(rel); err != nil {
			return time.Time{}, fmt.Errorf("want RFC 3339 (2026-01-02T15:04:05Z), now, or a relative time like -15m, -2h, -7d")
		}
	}
	if days > MaxRelativeDays || abs(d) > MaxRelativeDays*24*time.Hour {
		return time.Time{}, fmt.Errorf("%q is more than %d days away: give an RFC 3339 time instead", s, MaxRelativeDays)
	}
	day := time.Duration(days) * 24 * time.Hour
	if strings.HasPrefix(s, "-") {
		return now.Add(-day).Add(-abs(d)), nil
	}
	return now.Add(day).Add(d), nil
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// Values encodes the query as URL parameters (the inverse of Parse).
func (q *Query) Values() url.Values {
	v := url.Values{}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.After != nil {
		v.Set("after", q.After.String())
	}
	if q.Host != "" {
		v.Set("host", q.Host)
	}
	if q.App != "" {
		v.Set("app", q.App)
	}
	if q.MaxSeverity != nil {
		v.Set("severity", q.MaxSeverity.String())
	}
	if q.Contains != "" {
		v.Set("contains", q.Contains)
	}
	if q.Word != "" {
		v.Set("word", q.Word)
	}
	if q.Regex != nil {
		v.Set("regex", q.Regex.String())
	}
	v.Set("limit", strconv.Itoa(q.Limit))
	if q.Ascending {
		v.Set("order", "asc")
	}
	if q.Local {
		v.Set("local", "true")
	}
	keys := make([]string, 0, len(q.Fields))
	for k := range q.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v.Set("field."+k, q.Fields[k])
	}
	return v
}

// Range returns the receive-time bounds in milliseconds for an index scan
// (0 meaning unbounded above).
func (q *Query) Range() (from, to int64) {
	if !q.Since.IsZero() {
		from = q.Since.UnixMilli()
	}
	if !q.Until.IsZero() {
		to = q.Until.UnixMilli()
	}
	if q.After != nil && q.Ascending && q.After.Millis() > from {
		from = q.After.Millis()
	}
	if q.After != nil && !q.Ascending && (to == 0 || q.After.Millis() < to) {
		to = q.After.Millis()
	}
	return from, to
}

// Filtering reports whether the query filters on anything but time, so a
// scan has per-record work worth spreading over several cores.
func (q *Query) Filtering() bool {
	return q.Host != "" || q.App != "" || q.MaxSeverity != nil || q.Contains != "" || q.Word != "" || q.Regex != nil || len(q.Fields) > 0
}

// Matcher returns a function that reports whether an encoded record matches
// the query. It is safe for concurrent use and does not allocate for records
// that a cheap byte test can reject.
func (q *Query) Matcher() func(id record.ID, data []byte) bool {
	contains, word := []byte(q.Contains), []byte(q.Word)
	host, app := []byte(q.Host), []byte(q.App)
	after := q.After
	asc := q.Ascending
	return func(id record.ID, data []byte) bool {
		if after != nil {
			c := record.Compare(id, *after)
			if (asc && c <= 0) || (!asc && c >= 0) {
				return false
			}
		}
		// Every string of a record is stored verbatim in its encoding, so a
		// substring absent from the encoding is absent from the record.
		if len(contains) > 0 && !bytes.Contains(data, contains) {
			return false
		}
		if len(word) > 0 && !bytes.Contains(data, word) {
			return false
		}
		var v record.View
		if v.Reset(data) != nil {
			return false
		}
		if len(host) > 0 && !bytes.Equal(v.Hostname(), host) {
			return false
		}
		if len(app) > 0 && !bytes.Equal(v.AppName(), app) {
			return false
		}
		if q.MaxSeverity != nil && v.Severity > *q.MaxSeverity {
			return false
		}
		if len(contains) > 0 && !bytes.Contains(v.Message(), contains) && !bytes.Contains(v.Raw(), contains) {
			return false
		}
		if len(word) > 0 && !record.ContainsWord(v.Message(), word) && !record.ContainsWord(v.Raw(), word) {
			return false
		}
		if q.Regex != nil && !q.Regex.Match(v.Message()) && (len(v.Raw()) == 0 || !q.Regex.Match(v.Raw())) {
			return false
		}
		for k, want := range q.Fields {
			got, ok := v.Field(k)
			if !ok || string(got) != want {
				return false
			}
		}
		return true
	}
}
