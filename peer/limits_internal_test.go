package peer

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestIdleDeadlineDoesNotCancelALongAnswer: once a body is read, net/http
// reads the connection in the background, and a read deadline left behind
// by the body would cancel the request when it passed: a write waiting for
// its replicas longer than the idle timeout was cancelled.
func TestIdleDeadlineDoesNotCancelALongAnswer(t *testing.T) {
	const idle = 200 * time.Millisecond
	srv := httptest.NewServer(idleDeadlines(idle, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		time.Sleep(idle)                    // work between reads
		_, _ = r.Body.Read(make([]byte, 1)) // decoders read again after the end
		select {
		case <-r.Context().Done(): // the failure: cancelled by a stale deadline
			return
		case <-time.After(5 * idle): // a handler that works longer than idle
		}
		_, _ = io.WriteString(w, "done")
	})))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "text/plain", strings.NewReader("a body"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "done" {
		t.Fatalf("a request that worked 5× the idle timeout after reading its body: %q, %v", body, err)
	}
}
