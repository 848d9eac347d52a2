package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/logmesh/logmesh/client"
)

// agent is a logmesh agent process under measurement.
type agent struct {
	name    string
	cmd     *exec.Cmd
	api     string
	syslog  string
	dataDir string
	cl      *client.Client
	done    chan error
	killed  bool

	// peak anonymous and file-backed resident memory, sampled every 50ms
	// (VmHWM counts both: mapped store files in the page cache are
	// resident too, but the kernel can take them back at any time)
	mem struct {
		sync.Mutex
		anon, file int64
	}
	stopSampling chan struct{}
}

// sample records the process's resident memory until stopSampling closes.
func (a *agent) sample() {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-a.stopSampling:
			return
		case <-t.C:
		}
		anon, file, err := rss(a.cmd.Process.Pid)
		if err != nil {
			continue
		}
		a.mem.Lock()
		a.mem.anon, a.mem.file = max(a.mem.anon, anon), max(a.mem.file, file)
		a.mem.Unlock()
	}
}

// peakMem returns the highest anonymous and file-backed RSS sampled.
func (a *agent) peakMem() (anon, file int64) {
	a.mem.Lock()
	defer a.mem.Unlock()
	return a.mem.anon, a.mem.file
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startAgent runs `bin agent` with its data under dir.
func startAgent(ctx context.Context, bin, dir string, extra ...string) (*agent, error) {
	api, err := freePort()
	if err != nil {
		return nil, err
	}
	sys, err := freePort()
	if err != nil {
		return nil, err
	}
	a := &agent{api: api, syslog: sys, dataDir: filepath.Join(dir, "data"), done: make(chan error, 1)}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		return nil, err
	}
	name := filepath.Base(dir)
	args := append([]string{"agent", "--name", name, "--data-dir", a.dataDir, "--api-addr", api,
		"--syslog-tcp", sys, "--syslog-udp", "", "--log-level", "warn"}, extra...)
	a.cmd = exec.Command(bin, args...)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if err := a.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start agent: %w", err)
	}
	a.stopSampling = make(chan struct{})
	go a.sample()
	go func() { a.done <- a.cmd.Wait(); close(a.stopSampling); logf.Close() }()
	if a.cl, err = client.New(api); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for a.cl.Healthy(ctx) != nil {
		select {
		case err := <-a.done: // it refused its flags, or crashed
			a.killed = true
			return nil, fmt.Errorf("agent exited (%v); see %s", err, filepath.Join(dir, "agent.log"))
		default:
		}
		if time.Now().After(deadline) {
			a.kill()
			return nil, fmt.Errorf("agent did not come up; see %s", filepath.Join(dir, "agent.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return a, nil
}

// waitRecords polls the agent's status until it stores n records.
func (a *agent) waitRecords(ctx context.Context, n uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		s, err := a.cl.Status(ctx)
		if err == nil && s.Records >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agent stores %d of %d records after %v (last error %v)", s.Records, n, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (a *agent) stop() error {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.done:
		a.killed = true // exited: a deferred kill must not wait for it again
		return err
	case <-time.After(60 * time.Second):
		a.kill()
		return fmt.Errorf("agent did not stop within 60s")
	}
}

func (a *agent) kill() {
	if a.killed {
		return
	}
	a.killed = true
	_ = a.cmd.Process.Kill()
	<-a.done
}
