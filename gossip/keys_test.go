package gossip

import (
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func b64(k string) string { return base64.StdEncoding.EncodeToString([]byte(k)) }

// TestKeyRotationSurvivesRestartsAndRefusesEarlyRemoval walks a rotation:
// install the new key, use it, remove the old one, each refused while a
// member could be stranded, and a restarted member comes back with the
// rotated keyring from its file.
func TestKeyRotationSurvivesRestartsAndRefusesEarlyRemoval(t *testing.T) {
	oldKey, newKey := "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	dir := t.TempDir()
	withKeyring := func(name string) func(*Config) {
		return func(c *Config) {
			c.EncryptKey = []byte(oldKey)
			c.KeyringFile = filepath.Join(dir, name, "keyring.json")
		}
	}
	a := startNode(t, "a", nil, withKeyring("a"))
	b := startNode(t, "b", []string{a.Addr()}, withKeyring("b"))
	cAddr := freeAddr(t)
	startC := func() *node {
		return startNode(t, "c", []string{a.Addr()}, withKeyring("c"), func(c *Config) { c.BindAddr = cAddr })
	}
	c := startC()
	nodes := []*node{a, b, c}
	waitFor(t, 10*time.Second, "three members", allSee(nodes, "c", StatusAlive))

	if _, err := a.InstallKey(b64(newKey)); err != nil {
		t.Fatalf("install: %v", err)
	}
	ks, err := a.ListKeys()
	if err != nil || ks.Keys[b64(newKey)] != 3 || ks.Primary[b64(oldKey)] != 3 {
		t.Fatalf("after install: %+v (%v); want the new key on 3 members, the old one primary on 3", ks, err)
	}
	if _, err := a.RemoveKey(b64(oldKey)); err == nil || !strings.Contains(err.Error(), "still encrypt") {
		t.Fatalf("removing the key in use: %v", err)
	}
	if _, err := b.UseKey(b64(newKey)); err != nil {
		t.Fatalf("use: %v", err)
	}
	// c crashes before the old key goes: removing it now would strand c
	c.Close()
	waitFor(t, 10*time.Second, "c failed", allSee(nodes[:2], "c", StatusFailed))
	if _, err := a.RemoveKey(b64(oldKey)); err == nil || !strings.Contains(err.Error(), "c failed") {
		t.Fatalf("removing the old key while c is failed: %v", err)
	}
	// Serf answers a query that reaches a member still inside serf.Create
	// with a nil memberlist (a crash in Serf 0.11): let the refused
	// removal's query broadcasts drain before c's address is reused
	// (CI once crashed there even so: the query and event queues of a and
	// b must now stay empty for a second, not be empty once)
	drained := func() {
		var quietSince time.Time
		waitFor(t, 20*time.Second, "query broadcasts drained", func() bool {
			for _, n := range []*node{a, b} {
				st := n.serf.Stats()
				if st["query_queue"] != "0" || st["event_queue"] != "0" {
					quietSince = time.Time{}
					return false
				}
			}
			if quietSince.IsZero() {
				quietSince = time.Now()
			}
			return time.Since(quietSince) >= time.Second
		})
	}
	drained()
	c = startC() // its keyring file holds both keys, the new one primary
	nodes[2] = c
	waitFor(t, 10*time.Second, "c back", allSee(nodes, "c", StatusAlive))
	if _, err := a.RemoveKey(b64(oldKey)); err != nil {
		t.Fatalf("remove the old key once every member uses the new one: %v", err)
	}
	ks, err = c.ListKeys()
	if err != nil || len(ks.Keys) != 1 || ks.Primary[b64(newKey)] != 3 {
		t.Fatalf("after remove: %+v (%v)", ks, err)
	}
	// a restart keeps the rotated keyring, even when the configuration
	// still names the old key (the keyring wins, as in Serf's agent)
	c.Close()
	drained()
	c = startC()
	nodes[2] = c
	waitFor(t, 10*time.Second, "c back with its rotated keyring", allSee(nodes, "c", StatusAlive))
	var ks2 KeyStatus
	waitFor(t, 10*time.Second, "every member, c included, on the new key alone", func() bool {
		ks2, err = c.ListKeys()
		return err == nil && ks2.Answered == 3 && len(ks2.Keys) == 1 && ks2.Primary[b64(newKey)] == 3
	}, func() string { return fmt.Sprintf("%+v (%v)", ks2, err) })
	// an outsider with only the old key cannot join any more
	stale := startNode(t, "stale", []string{a.Addr()}, func(cf *Config) { cf.EncryptKey = []byte(oldKey) })
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := a.Member("stale"); ok {
			t.Fatal("a member with the removed key joined")
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = stale
}

func TestKeyOperationsNeedEncryption(t *testing.T) {
	a := startNode(t, "a", nil)
	if _, err := a.ListKeys(); err != ErrNotEncrypted {
		t.Fatalf("list keys without encryption: %v", err)
	}
}

// TestClusterLabelKeepsClustersApart: same key, different labels, seeds
// pointing at each other: the clusters never merge.
func TestClusterLabelKeepsClustersApart(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	label := func(l string) func(*Config) { return func(c *Config) { c.EncryptKey, c.Label = key, l } }
	prod := startNode(t, "prod-1", nil, label("prod"))
	prod2 := startNode(t, "prod-2", []string{prod.Addr()}, label("prod"))
	waitFor(t, 10*time.Second, "prod-2 joins prod", func() bool { return statusOf(prod.Gossip, "prod-2") == StatusAlive })
	staging := startNode(t, "staging-1", []string{prod.Addr()}, label("staging"))
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := prod.Member("staging-1"); ok {
			t.Fatal("a member of another cluster (label) merged into prod")
		}
		if n := len(staging.Members()); n != 1 {
			t.Fatalf("staging learned %d members of prod", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = prod2
}
