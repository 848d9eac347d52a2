package syslog

import "time"

// halfYear bounds the distance below which the receive year is certainly the
// closest: any other year is at least 365-182 days away.
const halfYear = 182 * 24 * time.Hour

// closestYear returns t's month, day and clock in loc, in the year that puts
// it closest to received. RFC 3164 timestamps carry no year; choosing the
// closest one (rather than the receive year) gets the New Year right: a line
// stamped "Dec 31 23:59:59" received at 00:00:01 on January 1 is from last
// year, one stamped "Jan  1 00:00:01" received a second before midnight on
// December 31 (a sender clock slightly ahead) is from next year.
//
// February 29 only exists in leap years: when neither the receive year nor
// its neighbours has one, the most recent earlier leap year is used. ok is
// false only when no year from 8 years before received to the year after it
// has the day.
func closestYear(t, received time.Time, loc *time.Location) (time.Time, bool) {
	month, day := t.Month(), t.Day()
	hour, minute, sec := t.Clock()
	nsec := t.Nanosecond()
	candidate := func(year int) (time.Time, bool) {
		c := time.Date(year, month, day, hour, minute, sec, nsec, loc)
		return c, c.Day() == day
	}
	year := received.In(loc).Year()
	best, found := candidate(year)
	if found && absDuration(best.Sub(received)) <= halfYear {
		return best, true
	}
	for _, y := range [...]int{year - 1, year + 1, year - 2, year - 3, year - 4, year - 5, year - 6, year - 7, year - 8} {
		if found && y < year-1 {
			break // the neighbours are the only other contenders
		}
		if c, ok := candidate(y); ok && (!found || absDuration(c.Sub(received)) < absDuration(best.Sub(received))) {
			best, found = c, true
		}
	}
	return best, found
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
