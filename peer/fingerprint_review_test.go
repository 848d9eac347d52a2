package peer_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/testutil"
)

func postWithType(t *testing.T, addr, ctype, body, key string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/logs", strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Idempotent-Replayed"), string(b)
}

// TestTheFingerprintComparesBytesAndParser: a used key replays the same
// bytes sent to the same parser (NDJSON whether or not the Content-Type
// says so, with or without a charset) and refuses other bytes, or the same
// bytes as plain lines; an empty keyed batch stores nothing and no key.
func TestTheFingerprintComparesBytesAndParser(t *testing.T) {
	c := testutil.NewCluster(t, 1, nil)
	c.WaitAlive(20 * time.Second)
	addr := c.Peer(0).APIAddr()
	body := "{\"message\":\"revF-one\"}\n"
	cases := []struct {
		name, ctype, body, key string
		want                   int
		replay                 string
	}{
		{"first ndjson", "application/x-ndjson", body, "revF-a", 200, ""},
		{"same retry", "application/x-ndjson", body, "revF-a", 200, "true"},
		{"same retry with charset param", "application/x-ndjson; charset=utf-8", body, "revF-a", 200, "true"},
		{"same bytes text/plain", "text/plain", body, "revF-a", 422, ""},
		{"trailing blank line", "application/x-ndjson", body + "\n\n", "revF-a", 422, ""},
		{"no content type, same bytes", "", body, "revF-a", 200, "true"},
		{"empty keyed", "application/x-ndjson", "", "revF-e", 200, ""},
		{"empty key reused for a batch", "application/x-ndjson", body, "revF-e", 200, ""},
		{"whitespace keyed", "text/plain", "\n\n", "revF-w", 200, ""},
	}
	for _, tc := range cases {
		code, rep, msg := postWithType(t, addr, tc.ctype, tc.body, tc.key)
		t.Logf("%s: %d replay=%q %s", tc.name, code, rep, strings.TrimSpace(msg))
		if code != tc.want || rep != tc.replay {
			t.Errorf("%s: %d replay %q, want %d %q", tc.name, code, rep, tc.want, tc.replay)
		}
	}
	n, _ := countTagged(t, c, 0, "revF-one")
	t.Logf("revF-one stored %d times", n)
	if n != 2 {
		t.Errorf("stored %d, want 2 (revF-a once, revF-e once)", n)
	}
	_ = context.Background
}
