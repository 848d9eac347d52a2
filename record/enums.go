package record

import (
	"fmt"
	"strconv"
	"strings"
)

// Severity is a syslog severity; lower is more severe.
type Severity uint8

// Syslog severities (RFC 5424 section 6.2.1).
const (
	SevEmergency Severity = iota
	SevAlert
	SevCritical
	SevError
	SevWarning
	SevNotice
	SevInfo
	SevDebug
)

var severityNames = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// String returns the short syslog name of the severity.
func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return strconv.Itoa(int(s))
}

var severityAliases = map[string]Severity{
	"emergency": SevEmergency, "panic": SevEmergency, "fatal": SevEmergency,
	"critical": SevCritical, "error": SevError, "warn": SevWarning,
	"informational": SevInfo, "information": SevInfo,
}

// ParseSeverity accepts a severity name ("err", "error", "warning"...) or number 0-7.
func ParseSeverity(s string) (Severity, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for i, n := range severityNames {
		if s == n {
			return Severity(i), nil
		}
	}
	if v, ok := severityAliases[s]; ok {
		return v, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 7 {
		return Severity(n), nil
	}
	return 0, fmt.Errorf("unknown severity %q (want a name such as err, warning, info or a number 0-7)", s)
}

// Facility is a syslog facility (0-23).
type Facility uint8

var facilityNames = [...]string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp",
	"cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

// String returns the syslog name of the facility.
func (f Facility) String() string {
	if int(f) < len(facilityNames) {
		return facilityNames[f]
	}
	return strconv.Itoa(int(f))
}

// ParseFacility accepts a facility name or number 0-23.
func ParseFacility(s string) (Facility, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for i, n := range facilityNames {
		if s == n {
			return Facility(i), nil
		}
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 23 {
		return Facility(n), nil
	}
	return 0, fmt.Errorf("unknown facility %q (want a name such as user, daemon, local0 or a number 0-23)", s)
}

// DefaultFacility and DefaultSeverity are used for messages without a PRI
// (RFC 3164 section 4.3.3: user.notice).
const (
	DefaultFacility = Facility(1)
	DefaultSeverity = SevNotice
)

// Transport says how a record first reached the cluster.
type Transport uint8

// Transports.
const (
	TransportUnknown Transport = iota
	TransportTCP
	TransportUDP
	TransportHTTP
	TransportTLS
)

var transportNames = [...]string{"unknown", "tcp", "udp", "http", "tls"}

func (t Transport) String() string {
	if int(t) < len(transportNames) {
		return transportNames[t]
	}
	return strconv.Itoa(int(t))
}

// Format says how the record's text was understood.
type Format uint8

// Formats.
const (
	// FormatRaw: the bytes did not parse as any known format; Raw holds them.
	FormatRaw Format = iota
	FormatRFC3164
	FormatRFC5424
	// FormatJSON: a structured record sent to the HTTP API.
	FormatJSON
)

var formatNames = [...]string{"raw", "rfc3164", "rfc5424", "json"}

func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return strconv.Itoa(int(f))
}

// Flags describe a record's provenance and quality.
type Flags uint16

// Flag bits.
const (
	// FlagHasPRI: the message carried a valid PRI; otherwise facility and
	// severity are the RFC 3164 defaults.
	FlagHasPRI Flags = 1 << iota
	// FlagParseError: the bytes did not parse completely; Raw holds them and
	// the fields hold what could be recovered.
	FlagParseError
	// FlagTruncated: the message was longer than the size limit and was cut.
	FlagTruncated
	// FlagNoEventTime: the message carried no usable timestamp, so the event
	// time is the receive time.
	FlagNoEventTime
)

// Has reports whether all bits of f2 are set.
func (f Flags) Has(f2 Flags) bool { return f&f2 == f2 }

// Reason names why a message is malformed. It is stored with the record and
// used as a metric label.
type Reason uint8

// Reasons.
const (
	ReasonNone Reason = iota
	// ReasonNoPRI: the message does not start with a PRI ("<n>").
	ReasonNoPRI
	// ReasonBadPRI: the PRI is not a number in 0..191.
	ReasonBadPRI
	// ReasonBadHeader: the PRI is fine but the header does not parse.
	ReasonBadHeader
	// ReasonBadTimestamp: the header parses but its timestamp does not.
	ReasonBadTimestamp
	// ReasonTruncated: the message exceeded the maximum message size.
	ReasonTruncated
	// ReasonFraming: the transport framing was broken (bad octet count,
	// stream ended inside a frame); the bytes read are kept.
	ReasonFraming
	// ReasonEmpty: an empty message (empty line or datagram).
	ReasonEmpty
	numReasons
)

var reasonNames = [...]string{"", "no_pri", "bad_pri", "bad_header", "bad_timestamp", "truncated", "framing", "empty"}

// String returns the metric label of the reason.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return strconv.Itoa(int(r))
}

// Reasons lists every malformation reason, for metrics.
func Reasons() []Reason {
	out := make([]Reason, 0, numReasons-1)
	for r := ReasonNoPRI; r < numReasons; r++ {
		out = append(out, r)
	}
	return out
}
