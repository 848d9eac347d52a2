package chaos

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logmesh/logmesh/testutil"
)

// NeedDocker skips t unless a Docker engine answers (and nsenter and nft are
// there for partitions inside containers).
func NeedDocker(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("skipped: docker not found")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skip("skipped: no Docker engine answers (docker info failed)")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipped: partitions inside containers need root (nsenter)")
	}
	for _, tool := range []string{"nsenter", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s not found (apt-get install util-linux nftables)", tool)
		}
	}
}

var image struct {
	once sync.Once
	tag  string
	err  error
}

// DockerImage builds the logmesh image from the repository's Dockerfile
// around a static binary of this checkout, once per test process, and
// returns its tag.
func DockerImage(t testing.TB) string {
	t.Helper()
	bin := testutil.Binary(t)
	image.once.Do(func() {
		image.tag = fmt.Sprintf("logmesh:test-%d", os.Getpid())
		dir, err := os.MkdirTemp("", "logmesh-image-")
		if err != nil {
			image.err = err
			return
		}
		defer os.RemoveAll(dir)
		root, err := testutil.ModuleRoot()
		if err != nil {
			image.err = err
			return
		}
		dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
		if err != nil {
			image.err = err
			return
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			image.err = err
			return
		}
		if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
			image.err = err
			return
		}
		if err := os.WriteFile(filepath.Join(dir, "bin", "logmesh"), data, 0o755); err != nil {
			image.err = err
			return
		}
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), dockerfile, 0o644); err != nil {
			image.err = err
			return
		}
		image.err = run("", "docker", "build", "-q", "-t", image.tag, dir)
	})
	if image.err != nil {
		t.Fatalf("docker image: %v", image.err)
	}
	return image.tag
}

// RemoveDockerImage removes the image DockerImage built, if any.
func RemoveDockerImage() {
	if image.tag != "" && image.err == nil {
		_ = run("", "docker", "rmi", "-f", image.tag)
	}
}

// Docker is the third level: every peer is a container on a private Docker
// network of its own. Kills are `docker kill` (SIGKILL), pauses
// `docker pause` (the cgroup freezer), partitions nftables rules entered
// into each container's network namespace with nsenter.
type Docker struct {
	t        testing.TB
	id       string
	network  string
	names    []string
	ips      map[string]string
	dirs     map[string]string
	args     map[string][]string
	fw       *firewall
	interval time.Duration
	image    string
	down     sync.Once
}

// NewDocker starts n peer containers with anti-entropy every interval.
func NewDocker(t testing.TB, n int, interval time.Duration, o Options, extra ...string) *Docker {
	t.Helper()
	NeedDocker(t)
	d := &Docker{t: t, id: fmt.Sprintf("%04x", rand.IntN(1<<16)), ips: map[string]string{}, dirs: map[string]string{},
		args: map[string][]string{}, interval: interval, image: DockerImage(t)}
	d.network = "lm" + d.id
	t.Cleanup(d.teardown)
	var subnet string
	var err error
	for tries := 0; tries < 20; tries++ {
		subnet = fmt.Sprintf("10.214.%d", rand.IntN(250)+1)
		if err = run("", "docker", "network", "create", "--subnet", subnet+".0/24", d.network); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("docker network: %v", err)
	}
	d.fw = newFirewall(func(host, input string) error {
		pid, err := d.pid(host)
		if err != nil {
			return err
		}
		return run(input, "nsenter", "-t", pid, "-n", "nft", "-f", "-")
	}, func(h string) string { return d.ips[h] })

	seed := net.JoinHostPort(subnet+".10", fmt.Sprint(hostGossipPort))
	key := gossipKey(t)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("p%d", i+1)
		ip := fmt.Sprintf("%s.%d", subnet, 10+i)
		d.names = append(d.names, name)
		d.ips[name], d.dirs[name] = ip, t.TempDir()
		args := []string{"agent", "--name", name, "--data-dir", "/data", "--api-addr", fmt.Sprintf(":%d", hostAPIPort),
			"--syslog-tcp", fmt.Sprintf(":%d", hostSyslogPort), "--syslog-udp", fmt.Sprintf(":%d", hostSyslogPort),
			"--gossip-addr", net.JoinHostPort(ip, fmt.Sprint(hostGossipPort)), "--test-timings", "--log-level", "debug", "--encrypt", key,
			"--fsync", "50ms", "--memtable-size", "4MiB", "--cache-size", "4MiB",
			"--anti-entropy-interval", interval.String(), "--join", seed, "--clock-offset-file", "/data/clock"}
		if err := writeClock(filepath.Join(d.dirs[name], "clock"), o.skewOf(i)); err != nil {
			t.Fatal(err)
		}
		args = append(append(args, o.flags(i, n)...), extra...)
		d.args[name] = args
		cmd := append([]string{"run", "-d", "--name", d.container(name), "--hostname", name, "--network", d.network,
			"--ip", ip, "-v", d.dirs[name] + ":/data", d.image}, args...)
		if err := run("", "docker", cmd...); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		d.waitUp(name)
	}
	waitAllAlive(t, d, 60*time.Second)
	return d
}

func (d *Docker) container(name string) string { return d.network + "-" + name }

func (d *Docker) pid(name string) (string, error) {
	out, err := exec.Command("docker", "inspect", "-f", "{{.State.Pid}}", d.container(name)).Output()
	if err != nil {
		return "", fmt.Errorf("docker inspect %s: %w", name, err)
	}
	pid := strings.TrimSpace(string(out))
	if pid == "0" {
		return "", fmt.Errorf("%s is not running", name)
	}
	return pid, nil
}

// waitUp waits until a peer's API answers.
func (d *Docker) waitUp(name string) {
	d.t.Helper()
	url := "http://" + d.API(name) + "/healthz"
	testutil.WaitFor(d.t, 30*time.Second, name+" API up", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// teardown removes the containers (keeping their logs when the test
// failed) and the network, once (Close and the test's cleanup both call it).
func (d *Docker) teardown() {
	d.down.Do(func() {
		for _, name := range d.names {
			c := d.container(name)
			if d.t.Failed() {
				d.keepLog(name, c)
			}
			_ = run("", "docker", "rm", "-f", c)
		}
		_ = run("", "docker", "network", "rm", d.network)
	})
}

// keepLog keeps a container's log under testutil.KeptLogs.
func (d *Docker) keepLog(name, container string) {
	out, err := exec.Command("docker", "logs", container).CombinedOutput()
	if err != nil {
		return
	}
	f, err := os.CreateTemp("", "logmesh-docker-log-")
	if err != nil {
		return
	}
	defer os.Remove(f.Name())
	f.Write(out)
	f.Close()
	testutil.KeepLog(d.t, f.Name(), name+".log")
}

// Names lists the peers.
func (d *Docker) Names() []string { return d.names }

// API returns a peer's API address on the Docker network.
func (d *Docker) API(name string) string {
	return net.JoinHostPort(d.ips[name], fmt.Sprint(hostAPIPort))
}

// Syslog returns a peer's syslog address.
func (d *Docker) Syslog(name string) string {
	return net.JoinHostPort(d.ips[name], fmt.Sprint(hostSyslogPort))
}

// Replicas is the replication factor (the agent's default).
func (d *Docker) Replicas() int { return 3 }

// AEInterval is the anti-entropy interval.
func (d *Docker) AEInterval() time.Duration { return d.interval }

// Partition cuts links between groups with nftables in the containers.
func (d *Docker) Partition(groups ...[]string) error { return d.fw.Partition(groups...) }

// Loss drops packets from → to.
func (d *Docker) Loss(from, to string, p float64) error { return d.fw.Loss(from, to, p) }

// Slow caps the bandwidth from → to and loses 5% of it.
func (d *Docker) Slow(from, to string, _ time.Duration) error {
	if err := d.fw.Slow(from, to, slowKBs); err != nil {
		return err
	}
	return d.fw.Loss(from, to, 0.05)
}

// Heal removes every rule from the running containers.
func (d *Docker) Heal() error {
	var up []string
	for _, n := range d.names {
		if d.Running(n) {
			up = append(up, n)
		}
	}
	return d.fw.Heal(up)
}

// CutAPI drops TCP from → to's API port (nftables in both containers).
func (d *Docker) CutAPI(from, to string) error { return d.fw.CutAPI(from, to) }

// Leave is docker stop: SIGTERM, and time to leave before a SIGKILL.
func (d *Docker) Leave(name string) error {
	return run("", "docker", "stop", "-t", "90", d.container(name))
}

// Wipe kills a container, deletes its data (keeping its clock file) and
// starts it again.
func (d *Docker) Wipe(name string) error {
	if err := d.Kill(name); err != nil {
		return err
	}
	entries, err := os.ReadDir(d.dirs[name])
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() != "clock" {
			if err := os.RemoveAll(filepath.Join(d.dirs[name], e.Name())); err != nil {
				return err
			}
		}
	}
	return d.Start(name)
}

// SetClock rewrites the clock file in the container's volume.
func (d *Docker) SetClock(name string, offset time.Duration) error {
	return writeClock(filepath.Join(d.dirs[name], "clock"), offset)
}

// Kill is docker kill (SIGKILL).
func (d *Docker) Kill(name string) error { return run("", "docker", "kill", d.container(name)) }

// Start restarts a killed container with its data; its new network
// namespace gets the faults in force again.
func (d *Docker) Start(name string) error {
	if err := run("", "docker", "start", d.container(name)); err != nil {
		return err
	}
	d.waitUp(name)
	return d.fw.Reapply(name)
}

// Pause freezes a container (docker pause).
func (d *Docker) Pause(name string) error { return run("", "docker", "pause", d.container(name)) }

// Resume thaws a paused container; it does nothing to one that is not paused.
func (d *Docker) Resume(name string) error {
	out, err := exec.Command("docker", "inspect", "-f", "{{.State.Paused}}", d.container(name)).Output()
	if err != nil || !bytes.Equal(bytes.TrimSpace(out), []byte("true")) {
		return nil
	}
	return run("", "docker", "unpause", d.container(name))
}

// Running reports whether the container runs (paused counts).
func (d *Docker) Running(name string) bool {
	out, err := exec.Command("docker", "inspect", "-f", "{{.State.Running}}", d.container(name)).Output()
	return err == nil && bytes.Equal(bytes.TrimSpace(out), []byte("true"))
}

// OwnProcesses is true.
func (d *Docker) OwnProcesses() bool { return true }

// Close removes the containers and the network.
func (d *Docker) Close() { d.teardown() }
