package query

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f := func(in string, want time.Time) {
		t.Helper()
		got, err := ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Fatalf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	f("now", now)
	f("-15m", now.Add(-15*time.Minute))
	f("-2h30m", now.Add(-150*time.Minute))
	f("-7d", now.Add(-7*24*time.Hour))
	f("-1d12h", now.Add(-36*time.Hour))
	f("2026-01-02T15:04:05Z", time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC))
	for _, bad := range []string{"yesterday", "-15", "15 minutes ago", "2026-13-01", "-106752d", "-36501d", "--1d", "-900000h", "2000000h"} {
		if _, err := ParseTime(bad, now); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}

func TestParseRoundTripsThroughValues(t *testing.T) {
	now := time.Now()
	in := url.Values{"since": {"-1h"}, "host": {"web-1"}, "app": {"nginx"}, "severity": {"warning"},
		"contains": {"timeout"}, "word": {"upstream timeout"}, "regex": {"5\\d\\d"}, "limit": {"50"}, "order": {"asc"}, "field.env": {"prod"}}
	q, err := Parse(in, now)
	if err != nil {
		t.Fatal(err)
	}
	q2, err := Parse(q.Values(), now)
	if err != nil {
		t.Fatal(err)
	}
	if q2.Host != "web-1" || q2.App != "nginx" || *q2.MaxSeverity != record.SevWarning || q2.Contains != "timeout" || q2.Word != "upstream timeout" ||
		q2.Regex.String() != `5\d\d` || q2.Limit != 50 || !q2.Ascending || q2.Fields["env"] != "prod" ||
		!q2.Since.Equal(q.Since.Truncate(time.Nanosecond)) {
		t.Fatalf("round trip changed the query: %+v", q2)
	}
	for _, bad := range []url.Values{{"limit": {"-1"}}, {"regex": {"("}}, {"severity": {"loud"}}, {"hots": {"x"}},
		{"since": {"-1h"}, "until": {"-2h"}}, {"order": {"sideways"}}, {"field.": {"x"}}} {
		if _, err := Parse(bad, now); err == nil {
			t.Errorf("Parse(%v) accepted", bad)
		}
	}
}

func TestMatcher(t *testing.T) {
	g := record.NewGenerator(nil)
	raw := []byte("<11>1 2026-11-25T10:00:00Z web-1 nginx 42 - - upstream timeout after 5s")
	syslogRec := &record.Record{ID: g.Next(), Hostname: "web-1", AppName: "nginx", Severity: record.SevError,
		Message: "upstream timeout after 5s", Raw: raw, Format: record.FormatRFC5424}
	jsonRec := &record.Record{ID: g.Next(), Hostname: "web-2", AppName: "shop", Severity: record.SevInfo,
		Message: "order placed", Format: record.FormatJSON, Fields: []record.Field{{Key: "env", Value: "prod"}}}
	enc := map[*record.Record][]byte{syslogRec: syslogRec.AppendEncode(nil), jsonRec: jsonRec.AppendEncode(nil)}
	f := func(params string, want ...*record.Record) {
		t.Helper()
		v, _ := url.ParseQuery(params)
		q, err := Parse(v, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		m := q.Matcher()
		for r, data := range enc {
			wanted := false
			for _, w := range want {
				wanted = wanted || w == r
			}
			if got := m(r.ID, data); got != wanted {
				t.Fatalf("%s: match(%s) = %v, want %v", params, r.Message, got, wanted)
			}
		}
	}
	f("", syslogRec, jsonRec)
	f("host=web-1", syslogRec)
	f("app=shop", jsonRec)
	f("severity=err", syslogRec)
	f("severity=debug", syslogRec, jsonRec)
	f("contains=timeout", syslogRec)
	f("contains=web-1", syslogRec) // found in the raw line
	f("contains=placed", jsonRec)
	f("contains=absent")
	f("contains=time", syslogRec) // a substring
	f("word=time")                // not a word
	f("word=timeout", syslogRec)
	f("word=upstream%20timeout", syslogRec) // a phrase
	f("word=timeout%20upstream")
	f("word=web", syslogRec) // "web-1" in the raw line: '-' ends the word
	f("word=placed", jsonRec)
	f("word=plac")
	f("regex=after%20[0-9]s", syslogRec)
	f("field.env=prod", jsonRec)
	f("field.env=dev")
	f("after="+syslogRec.ID.String()+"&order=asc", jsonRec)
	f("after="+jsonRec.ID.String(), syslogRec)
}

// FuzzParseTime: any input is refused or gives a time on the side of now
// its sign says, within the bound of a relative time.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"now", "-15m", "-7d", "-1d12h", "2026-01-02T15:04:05Z", "-106752d", "3d", "-0d"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s, now)
		if err != nil || got.IsZero() {
			return
		}
		if _, rfc := time.Parse(time.RFC3339Nano, strings.TrimSpace(s)); rfc == nil {
			return
		}
		limit := 2 * MaxRelativeDays * 24 * time.Hour
		if d := got.Sub(now); d > limit || d < -limit {
			t.Fatalf("ParseTime(%q) = %v: %v from now", s, got, d)
		}
		if strings.HasPrefix(strings.TrimSpace(s), "-") && got.After(now) {
			t.Fatalf("ParseTime(%q) = %v, after now", s, got)
		}
	})
}

func TestCountIsOfEveryMatchAndStaysWithTheClient(t *testing.T) {
	now := time.Now()
	q, err := Parse(url.Values{"count": {"true"}, "limit": {"5"}, "contains": {"x"}}, now)
	if err != nil || !q.Count || q.Limit != 0 {
		t.Fatalf("count=true&limit=5: %+v %v, want a count with no limit", q, err)
	}
	if v := q.Values(); v.Has("count") {
		t.Fatalf("Values carries count to the members' parts: %v", v)
	}
	if _, err := Parse(url.Values{"count": {"perhaps"}}, now); err == nil || !strings.Contains(err.Error(), "count") {
		t.Fatalf("count=perhaps: %v, want an error naming count", err)
	}
}
