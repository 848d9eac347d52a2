package bench

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"time"
)

// ClusterConfig says what the cluster benchmark measures.
type ClusterConfig struct {
	Binary   string
	Dir      string
	Messages int
	Conns    int
}

// startCluster starts n agents joined into one cluster with the given replicas.
func startCluster(ctx context.Context, bin, dir string, n, replicas int) ([]*agent, error) {
	var agents []*agent
	var seed string
	for i := 0; i < n; i++ {
		g, err := freePort()
		if err != nil {
			return agents, err
		}
		// a label of its own (the directory's): a benchmark cluster never
		// merges with another cluster on this host
		args := []string{"--fsync", "100ms", "--gossip-addr", g, "--replicas", fmt.Sprint(replicas), "--test-timings",
			"--cluster-label", "bench-" + filepath.Base(dir)}
		if seed != "" {
			args = append(args, "--join", seed)
		} else {
			seed = g
		}
		a, err := startAgent(ctx, bin, filepath.Join(dir, fmt.Sprintf("peer-%d", i+1)), args...)
		if err != nil {
			return agents, err
		}
		a.name = fmt.Sprintf("bench-%d", i+1)
		agents = append(agents, a)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, a := range agents {
		for {
			ms, err := a.cl.Members(ctx)
			alive := 0
			for _, m := range ms {
				if m.Status == "alive" {
					alive++
				}
			}
			if err == nil && alive == n {
				break
			}
			if time.Now().After(deadline) {
				return agents, fmt.Errorf("cluster did not form within 30s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return agents, nil
}

// sendTo sends streams round-robin over the agents' syslog ports and returns when written.
func sendTo(agents []*agent, streams [][]byte) error {
	return sendStreams(agents, streams, func(conn net.Conn, s []byte) error {
		_, err := conn.Write(s)
		return err
	})
}

// sendStreams gives each stream a connection of its own to an agent's
// syslog port (round-robin), writes it with write, and returns the first error.
func sendStreams(agents []*agent, streams [][]byte, write func(net.Conn, []byte) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(streams))
	for i, s := range streams {
		wg.Add(1)
		go func(addr string, s []byte) {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			if err := write(conn, s); err != nil {
				errs <- err
			}
		}(agents[i%len(agents)].syslog, s)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// waitAll waits until every agent stores want records.
func waitAll(ctx context.Context, agents []*agent, want uint64) error {
	for _, a := range agents {
		if err := a.waitRecords(ctx, want, 10*time.Minute); err != nil {
			return err
		}
	}
	return nil
}

// RunCluster measures a 3-peer cluster with 3 replicas against one peer with
// one replica on the same machine in the same run: ingestion rate until every
// replica holds every record, and replication lag at half that rate.
func RunCluster(ctx context.Context, cfg ClusterConfig, out func(format string, args ...any)) error {
	streams, _, _ := payloads(cfg.Messages, cfg.Conns, 7)
	// one peer, one replica
	single, err := startCluster(ctx, cfg.Binary, filepath.Join(cfg.Dir, "single"), 1, 1)
	if err != nil {
		killAll(single)
		return err
	}
	start := time.Now()
	if err := sendTo(single, streams); err != nil {
		killAll(single)
		return err
	}
	if err := waitAll(ctx, single, uint64(cfg.Messages)); err != nil {
		killAll(single)
		return err
	}
	singleRate := float64(cfg.Messages) / time.Since(start).Seconds()
	killAll(single)
	out("cluster    1 peer, --replicas 1, %d conns: %.0f msg/s\n", cfg.Conns, singleRate)

	agents, err := startCluster(ctx, cfg.Binary, filepath.Join(cfg.Dir, "cluster"), 3, 3)
	defer func() { killAll(agents) }()
	if err != nil {
		return err
	}
	streams, _, _ = payloads(cfg.Messages, cfg.Conns, 8)
	start = time.Now()
	if err := sendTo(agents, streams); err != nil {
		return err
	}
	if err := waitAll(ctx, agents, uint64(cfg.Messages)); err != nil {
		return err
	}
	clusterRate := float64(cfg.Messages) / time.Since(start).Seconds()
	out("cluster    3 peers, --replicas 3, %d conns, until all 3 replicas hold every record: %.0f msg/s = %.2f × one peer (target >= 0.33)\n",
		cfg.Conns, clusterRate, clusterRate/singleRate)

	killAll(agents)
	// lag at half the cluster's rate, paced, for 10 seconds, on a fresh
	// cluster (the first one is still compacting what it took at full speed)
	if agents, err = startCluster(ctx, cfg.Binary, filepath.Join(cfg.Dir, "paced"), 3, 3); err != nil {
		return err
	}
	rate := clusterRate / 2
	n := int(rate * 10)
	paced, _, _ := payloads(n, cfg.Conns, 9)
	if err := sendPaced(agents, paced, 10*time.Second); err != nil {
		return err
	}
	if err := waitAll(ctx, agents, uint64(n)); err != nil {
		return err
	}
	var p50, p99, mx float64
	for _, a := range agents {
		s, err := a.cl.Status(ctx)
		if err != nil {
			return err
		}
		for _, t := range s.Replication {
			p50, p99, mx = max(p50, t.LagP50Seconds), max(p99, t.LagP99Seconds), max(mx, t.LagMaxSeconds)
		}
	}
	out("cluster    replication lag at %.0f msg/s (half the rate), receive to durable on the replica, worst target: p50 %.0f ms, p99 %.0f ms (target < 1000 ms), max %.0f ms\n",
		rate, p50*1000, p99*1000, mx*1000)
	return nil
}

// sendPaced sends each stream spread evenly over d.
func sendPaced(agents []*agent, streams [][]byte, d time.Duration) error {
	return sendStreams(agents, streams, func(conn net.Conn, s []byte) error {
		const slices = 100
		start := time.Now()
		for k := 0; k < slices; k++ {
			lo, hi := len(s)*k/slices, len(s)*(k+1)/slices
			// cut at frame boundaries: octet-counted frames start with a digit after a frame
			lo, hi = frameBoundary(s, lo), frameBoundary(s, hi)
			if _, err := conn.Write(s[lo:hi]); err != nil {
				return err
			}
			time.Sleep(time.Until(start.Add(d * time.Duration(k+1) / slices)))
		}
		return nil
	})
}

// frameBoundary returns the start of the first octet-counted frame at or after i.
func frameBoundary(s []byte, i int) int {
	if i <= 0 || i >= len(s) {
		return min(max(i, 0), len(s))
	}
	for j := 0; j < len(s); {
		n, k := 0, j
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			n = n*10 + int(s[k]-'0')
			k++
		}
		next := k + 1 + n
		if j >= i {
			return j
		}
		j = next
	}
	return len(s)
}

func killAll(as []*agent) {
	for _, a := range as {
		if a != nil {
			a.kill()
		}
	}
}
