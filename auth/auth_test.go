package auth_test

import (
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/auth"
)

func TestTokenFileGrantsTheScopesItNames(t *testing.T) {
	tk, err := auth.Parse([]byte(`# operators
0123456789abcdef-all
shipper-0123456789 ingest
grafana-0123456789 query,ADMIN

`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		token string
		want  auth.Scope
		known bool
	}{
		{"0123456789abcdef-all", auth.Ingest | auth.Query | auth.Admin, true},
		{"shipper-0123456789", auth.Ingest, true},
		{"grafana-0123456789", auth.Query | auth.Admin, true},
		{"shipper-012345678", 0, false},
		{"", 0, false},
		{"# operators", 0, false},
	} {
		got, res := tk.Check(c.token, time.Now())
		if known := res == auth.Valid; got != c.want || known != c.known {
			t.Errorf("%q: scopes %v (result %v), want %v (%v)", c.token, got, res, c.want, c.known)
		}
	}
}

func TestTokenFileErrorsNameTheLine(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"short", "line 1: token of 5 bytes is too short"},
		{"0123456789abcdef\n0123456789abcdef query", "line 2: the token of line 1 again"},
		{"\n0123456789abcdef write", `line 2: unknown scope "write"`},
		{"0123456789abcdef query, admin", "line 1: want TOKEN, TOKEN SCOPE"},
		{"0123456789abcdef query until=soon", `line 1: until="soon" is not a date`},
		{"# nothing\n", "no token"},
	} {
		_, err := auth.Parse([]byte(c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.file, err, c.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("0123456789abcdef ingest,query\n# c\n"))
	f.Add([]byte("x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tk, err := auth.Parse(data)
		if err != nil {
			return
		}
		if tk.Len() == 0 {
			t.Fatal("a parsed file without tokens")
		}
	})
}

func TestTokensExpire(t *testing.T) {
	tk, err := auth.Parse([]byte("temporary-0123456789 query until=2026-06-30\nforever-0123456789 until=2026-06-30T12:00:00Z\n"))
	if err != nil {
		t.Fatal(err)
	}
	before := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	after := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	if s, res := tk.Check("temporary-0123456789", before); res != auth.Valid || s != auth.Query {
		t.Fatalf("before expiry: %v %v", s, res)
	}
	if s, res := tk.Check("temporary-0123456789", after); res != auth.Expired || s != 0 {
		t.Fatalf("after expiry: %v %v, want expired with no scope", s, res)
	}
	if _, res := tk.Check("forever-0123456789", after); res != auth.Expired {
		t.Fatalf("RFC 3339 expiry not applied: %v", res)
	}
	if _, res := tk.Check("unknown-0123456789", before); res != auth.Unknown {
		t.Fatalf("unknown token: %v", res)
	}
}
