package syslog

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Paris wherever the tests run

	gosyslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/sample"
)

// plainSeeds are RFC 5424 lines at the edges of what scan5424.plain
// vouches for: each limit it checks, on both sides.
var plainSeeds = func() []string {
	const pre = "<14>1 2003-10-11T22:14:15.003Z "
	s := []string{
		pre + strings.Repeat("h", 255) + " a p m - x",
		pre + strings.Repeat("h", 256) + " a p m - x",
		pre + "h " + strings.Repeat("a", 48) + " p m - x",
		pre + "h " + strings.Repeat("a", 49) + " p m - x",
		pre + "h a " + strings.Repeat("p", 128) + " m - x",
		pre + "h a " + strings.Repeat("p", 129) + " m - x",
		pre + "h a p " + strings.Repeat("m", 32) + " - x",
		pre + "h a p " + strings.Repeat("m", 33) + " - x",
		pre + "h\x7fx a p m - x",
		pre + "h\xc3\xa9 a p m - x",
		pre + "h a p m [" + strings.Repeat("i", 32) + " " + strings.Repeat("n", 32) + `="v"] x`,
		pre + "h a p m [" + strings.Repeat("i", 33) + `] x`,
		pre + "h a p m [i " + strings.Repeat("n", 33) + `="v"] x`,
		pre + `h a p m [i n="v"][i n="v"] dup`,
		pre + `h a p m [i n="v"][j n="v"] two`,
		pre + `h a p m [i n=""] empty`,
		pre + `h a p m [i n="a\"b"] escaped`,
		pre + `h a p m [i n="a\\b"] backslash`,
		pre + `h a p m [i n="a\b"] lone backslash`,
		pre + `h a p m [i n="a\]b"] bracket`,
		pre + "h a p m [i n=\"a\tb\"] tab",
		pre + "h a p m [i n=\"\xc3\xa9\"] utf8",
		pre + "h a p m [i n=\"\xc3\"] bad utf8",
		pre + `h a p m [i n="v" m="w"] two params`,
		pre + `h a p m [i n="v"  m="w"] two spaces`,
		pre + `h a p m [i  n="v"] two spaces`,
		pre + `h a p m [i n=v] unquoted`,
		pre + `h a p m [i n ="v"] space`,
		pre + `h a p m [ n="v"] no id`,
		pre + `h a p m [i=x] eq`,
		pre + `h a p m [i[ n="v"] bracket in name`,
		pre + `h a p m [i n="v"]x no space`,
		pre + `h a p m [i n="v"]`,
		pre + "h a p m -",
		pre + "h a p m - \xEF\xBB\xBFbom",
		pre + "h a p m -  two spaces",
		"<14>1 - h a p m - x",
		"<14>1 -x h a p m - x",
		"<14>1 2003-10-11T22:14:15Z h a p m - x",
		"<14>1 2003-10-11T22:14:15.1Z h a p m - x",
		"<14>1 2003-10-11T22:14:15.123456Z h a p m - x",
		"<14>1 2003-10-11T22:14:15.1234567Z h a p m - x",
		"<14>1 2003-10-11T22:14:15.Z h a p m - x",
		"<14>1 2003-10-11T22:14:15+02:00 h a p m - x",
		"<14>1 2003-10-11T22:14:15.5-23:59 h a p m - x",
		"<14>1 2003-10-11T22:14:15+24:00 h a p m - x",
		"<14>1 2024-03-31T01:30:00.123456+00:00 h a p m - rsyslog's offset for UTC",
		"<14>1 2024-03-31T03:30:00+02:00 h a p m - Paris after its change",
		"<14>1 2024-03-31T01:30:00+01:00 h a p m - Paris before it",
		"<14>1 2024-03-31T02:30:00-00:00 h a p m - x",
		"<14>1 2024-10-27T02:30:00+01:00 h a p m - x",
		"<14>1 2024-10-27T02:30:00+02:00 h a p m - x",
		"<14>1 2024-02-29T23:59:59.9+05:30 h a p m - x",
		"<14>1 2023-02-29T23:59:59.9+05:30 h a p m - x",
		"<14>1 0000-01-01T00:00:00+13:45 h a p m - x",
		"<14>1 9999-12-31T23:59:59-23:59 h a p m - x",
		"<14>1 2003-10-11T22:14:15+02:60 h a p m - x",
		"<14>1 2003-10-11T22:14:15+0200 h a p m - x",
		"<14>1 2003-10-11T24:14:15Z h a p m - x",
		"<14>1 2003-10-11T22:60:15Z h a p m - x",
		"<14>1 2003-10-11T22:14:60Z h a p m - x",
		"<14>1 2003-00-11T22:14:15Z h a p m - x",
		"<14>1 2003-13-11T22:14:15Z h a p m - x",
		"<14>1 2003-10-00T22:14:15Z h a p m - x",
		"<14>1 2003-10-32T22:14:15Z h a p m - x",
		"<14>1 2003-02-30T22:14:15Z h a p m - x",
		"<14>1 2004-02-29T22:14:15Z h a p m - x",
		"<14>1 1900-02-29T22:14:15Z h a p m - x",
		"<14>1 2000-02-29T22:14:15Z h a p m - x",
		"<14>1 2100-02-29T00:00:00.000001Z h a p m - x",
		"<14>1 2003-04-31T22:14:15Z h a p m - x",
		"<14>1 2003-12-31T23:59:59.999999Z h a p m - x",
		"<14>1 2003-10-11t22:14:15z h a p m - x",
		"<14>1 2003-10-11T22:14:15z h a p m - x",
		"<14>1 0000-01-01T00:00:00Z h a p m - x",
		"<14>1 2003-1-11T22:14:15Z h a p m - x",
		"<14>1 2003-10-11T22:14:15Z h a p - x",
		"<14>1 2003-10-11T22:14:15Z h a p m",
		"<14>1 2003-10-11T22:14:15Z h a p m ",
		"<14>1 2003-10-11T22:14:15Z h a p m x",
		"<14>1 2003-10-11T22:14:15Z h a p m [x",
		"<14>1 2003-10-11T22:14:15Z - - - - - -",
		"1 2003-10-11T22:14:15Z h a p m - no pri",
	}
	var many strings.Builder
	for i := range 17 {
		fmt.Fprintf(&many, "[e%d]", i)
	}
	s = append(s, pre+"h a p m "+many.String()+" seventeen", pre+"h a p m "+many.String()[:len(many.String())-5]+" sixteen")
	return append(s, string(bench5424))
}()

// paris has a daylight saving time, and an offset that is not UTC's.
var paris = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic(err) // time/tzdata is linked in
	}
	return loc
}()

// samePlain fails t unless the plain paths gave what the paths through
// go-syslog give: for RFC 3164 lines in two locations, received at two
// times (one the night Paris changes its clocks), and with the time's zone,
// offset and location compared as well.
func samePlain(t *testing.T, in []byte) {
	t.Helper()
	for _, loc := range []*time.Location{time.UTC, paris} {
		for _, recv := range []time.Time{time.Date(2025, 1, 1, 0, 0, 30, 0, time.UTC), time.Date(2024, 3, 31, 1, 30, 0, 0, time.UTC)} {
			var fast, slow record.Record
			(&Parser{Location: loc}).Parse(in, recv, &fast)
			(&Parser{Location: loc, fastOff: true}).Parse(in, recv, &slow)
			got, want := fromRecord(&fast), fromRecord(&slow)
			gotZone, gotOff := got.time.Zone()
			wantZone, wantOff := want.time.Zone()
			if got.String() != want.String() || !got.time.Equal(want.time) || gotZone != wantZone || gotOff != wantOff ||
				got.time.Location().String() != want.time.Location().String() || !bytes.Equal(fast.Raw, slow.Raw) {
				t.Fatalf("%q in %v received %v:\nplain     %v\ngo-syslog %v", in, loc, recv, got, want)
			}
		}
	}
}

// The plain paths give exactly what the paths through go-syslog give (RFC
// 5424 and RFC 3164 alike), and the RFC 5424 one vouches only for messages
// go-syslog accepts whole.
func FuzzParsePlain(f *testing.F) {
	for _, s := range plainSeeds {
		f.Add([]byte(s))
	}
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	lib := rfc5424.NewParser(rfc5424.WithBestEffort(), rfc5424.WithOptionalPriority())
	f.Fuzz(func(t *testing.T, in []byte) {
		samePlain(t, in)
		_, at, reason := parsePRI(in)
		if reason == record.ReasonBadPRI || !bytes.HasPrefix(in[at:], []byte("1 ")) {
			return
		}
		var r record.Record
		if s := scanRFC5424(in, at+2); s.plain(in) && fill5424(in, &s, &r) {
			if m, err := lib.Parse(in[at:s.sd.to]); err != nil || !s.agrees(in, m.(*rfc5424.SyslogMessage)) {
				t.Fatalf("plain vouches for %q, go-syslog: %v", in, err)
			}
		}
	})
}

// What the plain path refuses, go-syslog decides; what it takes is exactly
// what go-syslog gives. Each limit is tried on both sides, and the path
// taken is the one expected.
func TestThePlainPathStopsWhereGoSyslogsGrammarDoes(t *testing.T) {
	plain := map[string]bool{}
	for _, s := range plainSeeds {
		samePlain(t, []byte(s))
		in := []byte(s)
		_, at, _ := parsePRI(in)
		sc := scanRFC5424(in, at+2)
		plain[s] = bytes.HasPrefix(in[at:], []byte("1 ")) && sc.plain(in)
	}
	const pre = "<14>1 2003-10-11T22:14:15.003Z "
	for _, want := range []struct {
		line  string
		plain bool
	}{
		{pre + strings.Repeat("h", 255) + " a p m - x", true},
		{pre + strings.Repeat("h", 256) + " a p m - x", false},
		{pre + "h " + strings.Repeat("a", 49) + " p m - x", false},
		{pre + "h a " + strings.Repeat("p", 129) + " m - x", false},
		{pre + "h a p " + strings.Repeat("m", 32) + " - x", true},
		{pre + "h a p " + strings.Repeat("m", 33) + " - x", false},
		{pre + `h a p m [i n="v"][j n="v"] two`, true},
		{pre + `h a p m [i n="v"][i n="v"] dup`, false},
		{pre + `h a p m [i n="a\"b"] escaped`, false},
		{pre + "h a p m [i n=\"\xc3\xa9\"] utf8", false},
		{pre + "h a p m [" + strings.Repeat("i", 33) + `] x`, false},
		{"<14>1 2003-10-11T22:14:15.123456Z h a p m - x", true},
		{"<14>1 2003-10-11T22:14:15.1234567Z h a p m - x", false},
		{"<14>1 2003-10-11T22:14:15+24:00 h a p m - x", false},
		{"<14>1 - h a p m - x", true},
		{"<14>1 2003-10-11T22:14:15Z - - - - - -", true},
		{string(bench5424), true},
	} {
		got, ok := plain[want.line]
		if !ok {
			t.Fatalf("%q is not a seed", want.line)
		}
		if got != want.plain {
			t.Errorf("plain(%q) = %v, want %v", want.line, got, want.plain)
		}
	}
}

// The lines a fleet sends take the plain paths, through Parse: go-syslog is
// not asked for any of them, and they parse as go-syslog parses them.
func TestSampleLinesTakeThePlainPath(t *testing.T) {
	g := sample.New(7)
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	p := &Parser{Location: time.UTC}
	p.init()
	asked := &countingMachine{}
	p.p5424, p.p3164 = asked, asked
	for i := range 5000 {
		for _, in := range [][]byte{[]byte(g.RFC5424(at.Add(time.Duration(i) * time.Millisecond))), []byte(g.RFC3164(at))} {
			var r record.Record
			p.Parse(in, at, &r)
			if asked.n != 0 {
				t.Fatalf("go-syslog was asked for %q", in)
			}
			if r.Flags.Has(record.FlagParseError) {
				t.Fatalf("%q: %v", in, fromRecord(&r))
			}
			samePlain(t, in)
		}
	}
}

// countingMachine is a go-syslog machine that counts the messages it is
// given, and parses none.
type countingMachine struct{ n int }

func (c *countingMachine) Parse([]byte) (gosyslog.Message, error) { c.n++; return nil, errLibrary }
func (*countingMachine) WithBestEffort()                          {}
func (*countingMachine) HasBestEffort() bool                      { return true }

// shapedTime gives what time.ParseInLocation gives, time zone and location
// included, or leaves it to go-syslog where time.ParseInLocation refuses the
// day: every day of the months of leap and common years, with fractions of
// every length, and hours around the clock changes of zones with whole,
// half and quarter hours, against offsets each zone has, had or never has.
func TestShapedTimesAreTimeParsesTimes(t *testing.T) {
	zone := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	check := func(ts string, loc *time.Location) bool {
		t.Helper()
		if !timestampShape([]byte(ts)) {
			t.Fatalf("%s: not of the shape", ts)
		}
		want, werr := time.ParseInLocation(rfc5424.RFC3339MICRO, ts, loc)
		got, ok := shapedTime([]byte(ts), loc)
		gotZone, gotOff := got.Zone()
		wantZone, wantOff := want.Zone()
		// a fixed zone of a part of an hour is made anew by each call: its
		// name and offset are compared, not its address
		if ok != (werr == nil) || ok && (!got.Equal(want) || gotZone != wantZone || gotOff != wantOff ||
			got.Location().String() != want.Location().String()) {
			t.Fatalf("%s in %v: shapedTime %v (%v) %v, time.ParseInLocation %v (%v) %v", ts, loc, got, got.Location(), ok, want, want.Location(), werr)
		}
		return ok
	}
	taken := 0
	for _, loc := range []*time.Location{time.UTC, paris} {
		for _, year := range []int{0, 1900, 2000, 2003, 2004, 2100, 9999} {
			for month := 1; month <= 12; month++ {
				for day := 1; day <= 31; day++ {
					for _, frac := range []string{"", ".5", ".0001", ".999999"} {
						for _, off := range []string{"Z", "+00:00"} {
							if check(fmt.Sprintf("%04d-%02d-%02dT23:59:58%s%s", year, month, day, frac, off), loc) {
								taken++
							}
						}
					}
				}
			}
		}
	}
	if taken != 2*4*2*(4*365+3*366) { // 0, 2000 and 2004 are leap years; 1900, 2003, 2100 and 9999 are not
		t.Fatalf("%d timestamps parsed", taken)
	}
	offsets := []string{"Z", "+00:00", "-00:00", "+01:00", "+02:00", "+05:30", "-03:30", "-02:30", "+10:30", "+11:00", "+13:45", "-23:59"}
	for _, loc := range []*time.Location{time.UTC, paris, zone("America/St_Johns"), zone("Asia/Kolkata"), zone("Australia/Lord_Howe"), zone("Pacific/Chatham")} {
		// the days before and after 2024's clock changes of these zones
		for _, day := range []time.Time{time.Date(2024, 3, 9, 0, 0, 0, 0, time.UTC), time.Date(2024, 3, 30, 0, 0, 0, 0, time.UTC),
			time.Date(2024, 4, 6, 0, 0, 0, 0, time.UTC), time.Date(2024, 10, 5, 0, 0, 0, 0, time.UTC),
			time.Date(2024, 10, 26, 0, 0, 0, 0, time.UTC), time.Date(2024, 11, 2, 0, 0, 0, 0, time.UTC)} {
			for m := 0; m < 3*24*60; m += 15 {
				at := day.Add(time.Duration(m) * time.Minute)
				for _, off := range offsets {
					check(at.Format("2006-01-02T15:04:05.000")+off, loc)
				}
			}
		}
	}
}
