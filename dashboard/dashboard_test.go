package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/dashboard"
	"github.com/logmesh/logmesh/peer"
	"github.com/logmesh/logmesh/testutil"
	"github.com/logmesh/logmesh/tlsutil"
)

func TestHandlerServesThePageAndItsAssetsWithAStrictPolicy(t *testing.T) {
	srv := httptest.NewServer(dashboard.Handler())
	defer srv.Close()
	for _, c := range []struct {
		path, ctype, contains string
		code                  int
	}{
		{"/", "text/html", `<script src="/ui/app.js"`, 200},
		{"/ui/app.js", "javascript", "refreshPeers", 200},
		{"/ui/style.css", "text/css", "#grid", 200},
		{"/ui/nope.js", "", "", 404},
	} {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Fatalf("GET %s: %d, want %d", c.path, resp.StatusCode, c.code)
		}
		if c.code != 200 {
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, c.ctype) {
			t.Errorf("GET %s: Content-Type %q, want %s", c.path, ct, c.ctype)
		}
		if !strings.Contains(string(body), c.contains) {
			t.Errorf("GET %s: body lacks %q", c.path, c.contains)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q does not restrict scripts", c.path, csp)
		}
	}
}

// chromium finds a Chromium or Chrome to drive, "" when there is none.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// page is one browser tab on the dashboard.
type page struct {
	t   *testing.T
	ctx context.Context

	mu         sync.Mutex
	exceptions []string
}

// newPage starts headless Chromium, or skips the test when there is none.
func newPage(t *testing.T, extra ...chromedp.ExecAllocatorOption) *page {
	t.Helper()
	exe := chromium()
	if exe == "" {
		t.Skip("no Chromium on PATH (apt-get install chromium): the dashboard's browser tests cannot run")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1400, 1100), chromedp.Flag("disable-dev-shm-usage", true))
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	pg := &page{t: t, ctx: bctx}
	err := chromedp.Listen(bctx, func(ev any) { // starts the browser
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			d := e.ExceptionDetails
			msg := fmt.Sprintf("%s at %s:%d:%d", d.Text, d.URL, d.LineNumber+1, d.ColumnNumber+1)
			if d.Exception != nil {
				msg += ": " + d.Exception.Description
			}
			pg.mu.Lock()
			pg.exceptions = append(pg.exceptions, msg)
			pg.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	t.Cleanup(func() {
		pg.mu.Lock()
		defer pg.mu.Unlock()
		if len(pg.exceptions) > 0 {
			t.Errorf("the page threw: %s", strings.Join(pg.exceptions, "; "))
		}
	})
	return pg
}

func (pg *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	pg.t.Helper()
	ctx, cancel := context.WithTimeout(pg.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		pg.t.Fatalf("%s: %v", what, err)
	}
}

func evaluate[T any](pg *page, js string) (T, error) {
	ctx, cancel := context.WithTimeout(pg.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](js))
}

func (pg *page) isTrue(js string) bool {
	ok, err := evaluate[bool](pg, js)
	if err != nil {
		pg.t.Logf("evaluate: %v", err)
	}
	return err == nil && ok
}

func (pg *page) count(selector string) int {
	n, err := evaluate[int](pg, fmt.Sprintf("document.querySelectorAll(%q).length", selector))
	if err != nil {
		pg.t.Logf("evaluate: %v", err)
		return -1
	}
	return n
}

// screenshot keeps a PNG of the page under testutil.KeptLogs()/TEST.
func (pg *page) screenshot(name string) {
	pg.t.Helper()
	ctx, cancel := context.WithTimeout(pg.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		pg.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join(testutil.KeptLogs(), pg.t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		pg.t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		pg.t.Fatal(err)
	}
	pg.t.Logf("screenshot: %s", path)
}

// TestDashboardInABrowser drives the dashboard of a real 3-peer cluster in
// headless Chromium: three members alive, an ingested record found by the
// search box (a hostile one shown as text), a new one arriving by live tail,
// and a killed peer turning failed. Screenshots are kept under
// testutil.KeptLogs()/TestDashboardInABrowser.
func TestDashboardInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes and a browser")
	}
	pg := newPage(t)
	c := testutil.NewProcCluster(t, 3)
	for _, p := range c.Procs {
		c.WaitStatus(30*time.Second, p.Name, "alive")
	}

	pg.do("load the dashboard", chromedp.Navigate("http://"+c.Procs[0].APIAddr+"/"), chromedp.WaitVisible(chromedp.ID("members")))
	testutil.WaitFor(t, 30*time.Second, "three members alive on the page",
		func() bool { return pg.count(`#members tbody tr[data-state="alive"]`) == 3 })
	testutil.WaitFor(t, 30*time.Second, "256 partitions in the grid", func() bool { return pg.count("#grid .cell") == 256 })

	// a record sent to another peer is found from this one; a hostile line stays text
	token := fmt.Sprintf("dash-%d", time.Now().UnixNano())
	hostile := `<img src=x onerror="document.body.dataset.pwned='yes'"> ` + token
	body := fmt.Sprintf("{\"host\":\"web-1\",\"app\":\"nginx\",\"severity\":\"err\",\"message\":\"upstream timed out %s\"}\n"+
		"{\"host\":\"web-2\",\"app\":\"evil\",\"message\":%q}\n", token, hostile)
	if _, err := c.Client(1).Ingest(context.Background(), []byte(body), "application/x-ndjson", url.Values{}); err != nil {
		t.Fatal(err)
	}
	pg.do("search", chromedp.SetValue(chromedp.ID("q-contains"), token), chromedp.Click(chromedp.ID("q-go")))
	testutil.WaitFor(t, 30*time.Second, "the ingested records in the results", func() bool {
		return pg.isTrue(fmt.Sprintf(`(() => { const m = [...document.querySelectorAll('#results td.msg')].map(td => td.textContent);
			return m.length === 2 && m.includes('upstream timed out %s') && m.includes(%q); })()`, token, hostile))
	})
	if !pg.isTrue(`document.body.dataset.pwned === undefined`) || pg.count("#results img") != 0 {
		t.Fatalf("a log line became HTML on the page")
	}
	pg.screenshot("1-search")

	// whole words: "timed" is a word of the first record, "time" only part of one
	wordSearch := func(term, wantStatus string) {
		t.Helper()
		pg.do("search "+term, chromedp.SetValue(chromedp.ID("q-contains"), term), chromedp.Click(chromedp.ID("q-go")))
		testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("%q for %q", wantStatus, term), func() bool {
			return pg.isTrue(fmt.Sprintf(`document.getElementById('search-status').textContent.startsWith(%q)`, wantStatus))
		})
	}
	pg.do("tick whole words", chromedp.Click(chromedp.ID("q-words")))
	wordSearch("time", "0 records")
	wordSearch("timed", "1 records")
	if !pg.isTrue(fmt.Sprintf(`document.querySelector('#results td.msg').textContent === 'upstream timed out %s'`, token)) {
		t.Fatal("the whole-word search for timed did not return the record that holds it")
	}
	pg.do("untick whole words", chromedp.Click(chromedp.ID("q-words")))
	wordSearch("time", "1 records")
	wordSearch(token, "2 records")

	// live tail shows a record that arrives after the search
	pg.do("turn on live tail", chromedp.Click(chromedp.ID("q-live")))
	later := "live " + token
	if _, err := c.Client(2).Ingest(context.Background(), []byte(fmt.Sprintf("{\"message\":%q}\n", later)), "application/x-ndjson", url.Values{}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "the new record by live tail", func() bool {
		return pg.isTrue(fmt.Sprintf(`[...document.querySelectorAll('#results td.msg')].some(td => td.textContent === %q)`, later))
	})

	// a killed peer turns failed
	c.Procs[2].Kill()
	testutil.WaitFor(t, 30*time.Second, "p3 failed on the page",
		func() bool { return pg.count(`#members tbody tr[data-peer="p3"][data-state="failed"]`) == 1 })
	if n := pg.count(`#members tbody tr[data-state="alive"]`); n != 2 {
		t.Fatalf("%d members alive on the page after the kill, want 2", n)
	}
	pg.screenshot("2-peer-failed")
}

// TestDashboardWithAHundredPeers renders a 100-peer cluster (answers made up
// by a stub API) and checks every peer and partition is on the page. The
// time the page took to render the peers is logged (a figure, not a limit).
func TestDashboardWithAHundredPeers(t *testing.T) {
	pg := newPage(t)
	const peers = 100
	var cs api.ClusterStatus
	cs.AnsweredBy = "peer-000"
	for i := 0; i < peers; i++ {
		st := &api.Status{Node: fmt.Sprintf("peer-%03d", i), Records: uint64(100_000 * i), DiskBytes: int64(7_000_000 * i), UptimeSeconds: 3600}
		for j := 1; j <= 2; j++ {
			st.Replication = append(st.Replication, api.TargetStatus{Peer: fmt.Sprintf("peer-%03d", (i+j)%peers), LagP99Seconds: 0.05})
		}
		state := "alive"
		if i%25 == 7 {
			state, st = "failed", nil
		}
		cs.Peers = append(cs.Peers, api.PeerStatus{Name: fmt.Sprintf("peer-%03d", i), State: state, Status: st})
	}
	cv := api.Convergence{AnsweredBy: "peer-000", ConvergedThrough: time.Now().Add(-time.Minute)}
	for p := 0; p < 256; p++ {
		pp := api.PartitionProof{Partition: p, Owners: []string{"peer-001", "peer-002", "peer-003"}}
		if p%3 != 0 {
			pp.ProvenEqualAt = time.Now().Add(-time.Duration(p) * 10 * time.Second)
		}
		cv.Partitions = append(cv.Partitions, pp)
	}
	mux := http.NewServeMux()
	mux.Handle("/", dashboard.Handler())
	serveJSON := func(v any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(v)
		}
	}
	mux.Handle("/v1/cluster", serveJSON(cs))
	mux.Handle("/v1/convergence", serveJSON(cv))
	mux.HandleFunc("/v1/logs", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("X-Logmesh-Coverage", "full")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	pg.do("load the dashboard", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("members")))
	testutil.WaitFor(t, 30*time.Second, "100 peers on the page", func() bool { return pg.count("#members tbody tr") == peers })
	if n := pg.count(`#members tbody tr[data-state="failed"]`); n != 4 {
		t.Fatalf("%d failed peers on the page, want 4", n)
	}
	testutil.WaitFor(t, 30*time.Second, "the grid coloured", func() bool { return pg.count("#grid .cell.never") == 86 })
	if n := pg.count("#grid .cell.fresh"); n != 8 { // p%3 != 0 and p*10s < 120s: 1,2,4,5,7,8,10,11
		t.Fatalf("%d fresh partitions, want 8", n)
	}
	ms, err := evaluate[string](pg, `document.getElementById('members').dataset.renderMs`)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rendering 100 peers took %s ms in the page", ms)
	pg.screenshot("100-peers")
}

// TestDashboardWithTLSAndAToken: on a cluster with mutual TLS and API
// tokens the page asks for a token, then shows the cluster.
func TestDashboardWithTLSAndAToken(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and a browser")
	}
	// the test CA is not in the browser's store; the TLS itself is tested in peer
	pg := newPage(t, chromedp.Flag("ignore-certificate-errors", true))
	dir := t.TempDir()
	ca, err := tlsutil.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	const token = "dashboard-token-0123456789"
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte(token+" query\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := testutil.NewCluster(t, 3, func(i int, cfg *peer.Config) {
		f, err := ca.IssueFiles(dir, cfg.Name, []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS, cfg.TokenFile = f, tokens
	})
	c.WaitAlive(20 * time.Second)
	addr := strings.TrimPrefix(c.Client(0).Addr(), "http://")

	pg.do("load the dashboard over TLS", chromedp.Navigate("https://"+addr+"/"), chromedp.WaitVisible(chromedp.ID("members")))
	testutil.WaitFor(t, 20*time.Second, "the page to ask for a token", func() bool {
		return pg.isTrue(`!document.getElementById('login').hidden`)
	})
	if n := pg.count("#members tbody tr"); n != 0 {
		t.Fatalf("%d members shown without a token", n)
	}
	pg.do("enter the token", chromedp.SetValue(chromedp.ID("token"), token), chromedp.Click(chromedp.ID("token-go")))
	testutil.WaitFor(t, 20*time.Second, "three members alive after the token", func() bool {
		return pg.count(`#members tbody tr[data-state="alive"]`) == 3
	})
	pg.screenshot("tls-token")
}
