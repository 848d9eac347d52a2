// Package auth checks the bearer tokens of API calls. Tokens come from a
// file, one a line: `TOKEN` alone grants every scope, `TOKEN SCOPE,...` the
// scopes named; `until=2026-12-31` (or an RFC 3339 time) after either makes
// the token expire. Only SHA-256 hashes of the tokens are kept in memory, and a
// presented token is compared with every one in constant time.
package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"
	"time"
)

// Scope is what a token may do.
type Scope uint8

const (
	// Ingest allows writing logs (POST /v1/logs).
	Ingest Scope = 1 << iota
	// Query allows reading logs, status, members, convergence and metrics.
	Query
	// Admin allows repairs and the profiler.
	Admin

	all = Ingest | Query | Admin
)

var scopeNames = map[string]Scope{"ingest": Ingest, "query": Query, "admin": Admin}

func (s Scope) String() string {
	var names []string
	for _, n := range []string{"ingest", "query", "admin"} {
		if s&scopeNames[n] != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}

// MinTokenBytes is the shortest token accepted: shorter ones are guessable.
const MinTokenBytes = 16

// Tokens is a set of hashed tokens with their scopes.
type Tokens struct {
	hashes [][sha256.Size]byte
	scopes []Scope
	until  []time.Time // zero: no expiry
}

// Parse reads a token file's content; errors name the line.
func Parse(data []byte) (*Tokens, error) {
	t := &Tokens{}
	seen := map[[sha256.Size]byte]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		var until time.Time
		if last := fields[len(fields)-1]; len(fields) > 1 && strings.HasPrefix(last, "until=") {
			v := strings.TrimPrefix(last, "until=")
			var err error
			if until, err = time.Parse(time.RFC3339, v); err != nil {
				if until, err = time.Parse("2006-01-02", v); err != nil {
					return nil, fmt.Errorf("line %d: until=%q is not a date (2026-12-31) or an RFC 3339 time", n, v)
				}
			}
			fields = fields[:len(fields)-1]
		}
		if len(fields) > 2 {
			return nil, fmt.Errorf("line %d: want TOKEN, TOKEN SCOPE,... or either with until=DATE (scopes comma-separated, no spaces)", n)
		}
		tok := fields[0]
		if len(tok) < MinTokenBytes {
			return nil, fmt.Errorf("line %d: token of %d bytes is too short to be secret (want %d or more)", n, len(tok), MinTokenBytes)
		}
		scope := all
		if len(fields) == 2 {
			scope = 0
			for _, name := range strings.Split(fields[1], ",") {
				s, ok := scopeNames[strings.ToLower(name)]
				if !ok {
					return nil, fmt.Errorf("line %d: unknown scope %q (want ingest, query or admin)", n, name)
				}
				scope |= s
			}
		}
		h := sha256.Sum256([]byte(tok))
		if prev, dup := seen[h]; dup {
			return nil, fmt.Errorf("line %d: the token of line %d again", n, prev)
		}
		seen[h] = n
		t.hashes = append(t.hashes, h)
		t.scopes = append(t.scopes, scope)
		t.until = append(t.until, until)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(t.hashes) == 0 {
		return nil, fmt.Errorf("no token")
	}
	return t, nil
}

// Load reads a token file.
func Load(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	return t, nil
}

// Result is what a presented token is.
type Result uint8

const (
	// Unknown: not in the set.
	Unknown Result = iota
	// Expired: in the set, past its until= time.
	Expired
	// Valid: in the set and not expired.
	Valid
)

// Check returns the scopes of a presented token and whether it is known
// and current at now. Every known token is compared, in constant time,
// whatever matches.
func (t *Tokens) Check(token string, now time.Time) (Scope, Result) {
	h := sha256.Sum256([]byte(token))
	var scope Scope
	found, match := 0, -1
	for i, k := range t.hashes {
		eq := subtle.ConstantTimeCompare(h[:], k[:])
		found |= eq
		scope |= Scope(subtle.ConstantTimeSelect(eq, int(t.scopes[i]), 0))
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	switch {
	case found == 0:
		return 0, Unknown
	case !t.until[match].IsZero() && now.After(t.until[match]):
		return 0, Expired
	}
	return scope, Valid
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.hashes) }
