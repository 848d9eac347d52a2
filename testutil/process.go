package testutil

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a logmesh agent run as a real process, for tests that need
// signals (SIGKILL, SIGSTOP, SIGTERM) and real restarts.
type Process struct {
	t    testing.TB
	Name string
	// Dir holds the data directory and the log file.
	Dir     string
	APIAddr string
	// SyslogAddr is the syslog TCP and UDP address.
	SyslogAddr string
	// Args are the extra agent flags, kept across restarts.
	Args []string
	// TLS, when set, is how Start reaches an agent that serves https.
	TLS *tls.Config
	// Wrap is a command the agent runs under, e.g. `ip netns exec NS`; it
	// must exec the agent (so that signals reach it).
	Wrap []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logf *os.File
}

// NewProcess prepares (does not start) an agent named name with its own
// directory and free ports. extra flags are appended to every start.
func NewProcess(t testing.TB, name string, extra ...string) *Process {
	t.Helper()
	return NewProcessAt(t, name, nil, FreeAddr(t), FreeAddr(t), extra...)
}

// NewProcessAt prepares an agent run under wrap (nil: directly) with the
// given API and syslog addresses. When the test fails, the tail of the log
// goes to the test output and the whole log is kept (see KeptLogs).
func NewProcessAt(t testing.TB, name string, wrap []string, apiAddr, syslogAddr string, extra ...string) *Process {
	t.Helper()
	p := &Process{t: t, Name: name, Dir: t.TempDir(), APIAddr: apiAddr, SyslogAddr: syslogAddr, Args: extra, Wrap: wrap}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			p.dumpLog()
		}
		if t.Failed() || os.Getenv("LOGMESH_KEEP_LOGS") == "always" {
			KeepLog(t, p.LogPath(), p.Name+".log")
		}
	})
	return p
}

// KeptLogs is where logs of failed tests are copied (of every test with
// LOGMESH_KEEP_LOGS=always): $LOGMESH_TEST_LOGS, or logmesh-test-logs in the
// temporary directory.
func KeptLogs() string {
	if d := os.Getenv("LOGMESH_TEST_LOGS"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "logmesh-test-logs")
}

// KeepLog copies a log file of a failed test under KeptLogs()/TEST/name.
func KeepLog(t testing.TB, path, name string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	dir := filepath.Join(KeptLogs(), strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	dst := filepath.Join(dir, name)
	if err := os.WriteFile(dst, data, 0o644); err == nil {
		t.Logf("log of %s kept at %s", name, dst)
	}
}

// LogPath is the agent's log file; it accumulates across restarts.
func (p *Process) LogPath() string { return filepath.Join(p.Dir, "agent.log") }

// DataDir is the agent's data directory.
func (p *Process) DataDir() string { return filepath.Join(p.Dir, "data") }

// Start starts the agent and waits until its API answers.
func (p *Process) Start() {
	p.t.Helper()
	p.StartUntil(http.StatusOK)
}

// StartUntil starts the agent as Start does, and waits until its /healthz
// answers with code (a peer waiting for disk space answers 503).
func (p *Process) StartUntil(code int) {
	p.t.Helper()
	p.mu.Lock()
	if p.cmd != nil {
		p.mu.Unlock()
		p.t.Fatalf("%s: already running", p.Name)
	}
	logf, err := os.OpenFile(p.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.mu.Unlock()
		p.t.Fatal(err)
	}
	fmt.Fprintf(logf, "==== start %s\n", time.Now().Format(time.RFC3339Nano))
	args := append([]string{"agent", "--name", p.Name, "--data-dir", p.DataDir(), "--api-addr", p.APIAddr,
		"--syslog-tcp", p.SyslogAddr, "--syslog-udp", p.SyslogAddr, "--log-level", "debug"}, p.Args...)
	argv := append(append(slices.Clone(p.Wrap), Binary(p.t)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		p.mu.Unlock()
		p.t.Fatalf("%s: start: %v", p.Name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	p.cmd, p.done, p.logf = cmd, done, logf
	p.mu.Unlock()
	url, hc := "http://"+p.APIAddr+"/healthz", http.DefaultClient
	if p.TLS != nil {
		url, hc = "https://"+p.APIAddr+"/healthz", &http.Client{Transport: &http.Transport{TLSClientConfig: p.TLS}}
		defer hc.CloseIdleConnections()
	}
	WaitFor(p.t, 30*time.Second, p.Name+" API up", func() bool {
		select {
		case <-done:
			p.dumpLog()
			p.t.Fatalf("%s exited during start", p.Name)
		default:
		}
		resp, err := hc.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == code
	})
}

// StartExpectingExit starts the agent as Start would and waits, up to d,
// for it to exit by itself (refusing to start); it returns what it printed
// and how it exited. The test fails if it is still running after d.
func (p *Process) StartExpectingExit(d time.Duration) (string, error) {
	p.t.Helper()
	args := append([]string{"agent", "--name", p.Name, "--data-dir", p.DataDir(), "--api-addr", p.APIAddr,
		"--syslog-tcp", p.SyslogAddr, "--syslog-udp", p.SyslogAddr}, p.Args...)
	argv := append(append(slices.Clone(p.Wrap), Binary(p.t)), args...)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if ctx.Err() != nil {
		p.t.Fatalf("%s did not exit within %v: %s", p.Name, d, out)
	}
	return string(out), err
}

// PeakRSS returns the running agent's peak resident memory (VmHWM of
// /proc/PID/status, Linux), or an error.
func (p *Process) PeakRSS() (int64, error) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return 0, errors.New("not running")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// Running reports whether the process is running.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// Kill sends SIGKILL and waits for the process to die.
func (p *Process) Kill() {
	p.Signal(syscall.SIGCONT) // a stopped process must be able to die
	p.Signal(syscall.SIGKILL)
	p.wait(10 * time.Second)
}

// StopWithin sends SIGTERM and waits up to d for the process to exit,
// reporting whether it did.
func (p *Process) StopWithin(d time.Duration) bool {
	p.Signal(syscall.SIGTERM)
	return p.wait(d)
}

// Stop sends SIGTERM and waits for a clean exit.
func (p *Process) Stop() {
	p.t.Helper()
	p.Signal(syscall.SIGTERM)
	if !p.wait(30 * time.Second) {
		p.t.Fatalf("%s did not exit within 30s of SIGTERM", p.Name)
	}
}

func (p *Process) wait(d time.Duration) bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
	case <-time.After(d):
		return false
	}
	p.mu.Lock()
	p.cmd, p.done = nil, nil
	p.mu.Unlock()
	return true
}

// dumpLog prints the tail of the agent's log into the test output.
func (p *Process) dumpLog() {
	f, err := os.Open(p.LogPath())
	if err != nil {
		return
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > 80 {
		lines = lines[len(lines)-80:]
	}
	p.t.Logf("---- last lines of %s (%s)\n%s", p.Name, p.LogPath(), strings.Join(lines, "\n"))
}

// Context returns a context that ends when the test does.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}
