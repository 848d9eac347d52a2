package bench

import (
	"context"
	"encoding"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/logmesh/logmesh/antientropy"
	"github.com/logmesh/logmesh/antientropy/indexstore"
	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/sample"
)

// counting carries rounds in process through the binary encoding and counts
// the bytes that would cross the network.
type counting struct {
	to    *antientropy.Peer
	bytes int
}

func through[T any, PT interface {
	*T
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}](c *counting, in PT) (PT, error) {
	b, err := in.MarshalBinary()
	if err != nil {
		return nil, err
	}
	c.bytes += len(b)
	var out T
	return &out, PT(&out).UnmarshalBinary(b)
}

func (c *counting) Roots(ctx context.Context, _ string, req *antientropy.RootsRequest) (*antientropy.RootsReply, error) {
	r, err := through(c, req)
	if err != nil {
		return nil, err
	}
	rep, err := c.to.Roots(ctx, "a", r)
	if err != nil {
		return nil, err
	}
	return through(c, rep)
}

func (c *counting) Buckets(ctx context.Context, _ string, req *antientropy.BucketsRequest) (*antientropy.BucketsReply, error) {
	r, err := through(c, req)
	if err != nil {
		return nil, err
	}
	rep, err := c.to.Buckets(ctx, "a", r)
	if err != nil {
		return nil, err
	}
	return through(c, rep)
}

func (c *counting) Exchange(ctx context.Context, _ string, req *antientropy.ExchangeRequest) (*antientropy.ExchangeReply, error) {
	r, err := through(c, req)
	if err != nil {
		return nil, err
	}
	rep, err := c.to.Exchange(ctx, "a", r)
	if err != nil {
		return nil, err
	}
	return through(c, rep)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// RunAntiEntropy measures one round between two replicas of n records over
// 24h where missing records lack on one side, and a round between replicas
// in step, against exchanging every ID (the naive method).
func RunAntiEntropy(ctx context.Context, dir string, n, missing int, out func(string, ...any)) error {
	open := func(name string) (*index.DB, error) {
		cfg := index.DefaultConfig(filepath.Join(dir, name))
		cfg.FsyncInterval = time.Second
		cfg.Logger = quietLogger()
		return index.Open(cfg)
	}
	a, err := open("a")
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := open("b")
	if err != nil {
		return err
	}
	defer b.Close()
	g := sample.New(5)
	end := time.Now().Truncate(time.Hour)
	start := end.Add(-24 * time.Hour)
	step := 24 * time.Hour / time.Duration(n)
	var batch, batchB []index.Entry
	missingBytes, dropped := 0, 0
	every := n / missing
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * step)
		line := g.RFC5424(at)
		id := record.NewGenerator(func() time.Time { return at }).Next()
		r := &record.Record{ID: id, Raw: []byte(line), Message: line[len(line)/2:], Source: "10.0.0.1:514", Peer: "a"}
		e := index.Entry{ID: id, Data: r.AppendEncode(nil)}
		batch = append(batch, e)
		if i%every == every/2 && dropped < missing {
			missingBytes += len(e.Data)
			dropped++
		} else {
			batchB = append(batchB, e)
		}
		if len(batch) >= 4096 || i == n-1 {
			if _, err := a.Write(ctx, batch, index.OriginRemote); err != nil {
				return err
			}
			if _, err := b.Write(ctx, batchB, index.OriginRemote); err != nil {
				return err
			}
			batch, batchB = batch[:0], batchB[:0]
		}
	}
	diff := a.Digest().Count - b.Digest().Count
	pa := antientropy.New(antientropy.Config{Store: indexstore.New(a)})
	pb := antientropy.New(antientropy.Config{Store: indexstore.New(b)})
	parts := make([]record.Partition, record.NumPartitions)
	for i := range parts {
		parts[i] = record.Partition(i)
	}
	tr := &counting{to: pa}
	res, err := pb.Sync(ctx, tr, "a", parts, true) // b, the one missing records, initiates
	if err != nil {
		return err
	}
	overhead := tr.bytes - res.ReceivedBytes - res.SentBytes
	out("anti-entropy %d records on two replicas over 24h, %d missing on one side (%d bytes of records):\n", n, diff, missingBytes)
	limit := missingBytes*11/10 + 64<<10
	out("anti-entropy   one round: found and moved %d records (records sent / missing = %.2f), %d bytes on the wire: %d of records + %d of protocol (target <= 1.1 × %d + 64 KiB = %d), %d differing buckets, %v\n",
		res.Received+res.Sent, float64(res.Received+res.Sent)/float64(diff), tr.bytes, res.ReceivedBytes+res.SentBytes,
		overhead, missingBytes, limit, res.DifferingBuckets, res.Took.Round(time.Millisecond))
	if a.Digest() != b.Digest() {
		return fmt.Errorf("replicas differ after one round")
	}
	tr.bytes = 0
	cpu0 := cpuTime()
	res, err = pb.Sync(ctx, tr, "a", parts, true)
	cpu := cpuTime() - cpu0
	if err != nil {
		return err
	}
	out("anti-entropy   round between replicas in step: %d bytes on the wire (target < 64 KiB), %v CPU for both sides (target < 50 ms), %d of %d partitions proven equal\n",
		tr.bytes, cpu.Round(100*time.Microsecond), len(res.Equal), record.NumPartitions)
	naive := int(a.Digest().Count) * record.IDLen
	out("anti-entropy   naive (exchange every ID of every partition): %d bytes = %.0f × this round's bytes with records missing\n",
		naive, float64(naive)/float64(overhead+missingBytes))
	return nil
}
