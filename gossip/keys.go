package gossip

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

type serfKeyResponse = serf.KeyResponse

// The keyring holds the gossip encryption keys: the primary one encrypts,
// all of them decrypt, so keys rotate without a moment where members cannot
// read each other: install the new key everywhere, use it, then remove the
// old one. It lives in KeyringFile (a JSON list of base64 keys, the primary
// first, as Serf writes it) so rotations survive restarts.

// loadKeyring returns the keyring to start with: the file's when it exists
// (as Serf's agent does: after a rotation the configured key is stale, and
// the keyring wins with a warning), else one made of EncryptKey, written
// to the file. Nil: no encryption.
func (cfg *Config) loadKeyring(log *slog.Logger) (*memberlist.Keyring, error) {
	var keys [][]byte
	if cfg.KeyringFile != "" {
		data, err := os.ReadFile(cfg.KeyringFile)
		switch {
		case err == nil:
			var enc []string
			if err := json.Unmarshal(data, &enc); err != nil {
				return nil, fmt.Errorf("gossip keyring %s: %w", cfg.KeyringFile, err)
			}
			for _, e := range enc {
				k, err := base64.StdEncoding.DecodeString(e)
				if err != nil {
					return nil, fmt.Errorf("gossip keyring %s: %w", cfg.KeyringFile, err)
				}
				keys = append(keys, k)
			}
			if len(keys) == 0 {
				return nil, fmt.Errorf("gossip keyring %s holds no key", cfg.KeyringFile)
			}
			if len(cfg.EncryptKey) > 0 && !slices.ContainsFunc(keys, func(k []byte) bool { return string(k) == string(cfg.EncryptKey) }) {
				log.Warn("the --encrypt key is not in the gossip keyring (rotated with logmesh keys?): using the keyring; update or drop --encrypt", "keyring", cfg.KeyringFile)
			}
		case errors.Is(err, os.ErrNotExist):
			if len(cfg.EncryptKey) == 0 {
				return nil, nil
			}
			keys = [][]byte{cfg.EncryptKey}
			if err := writeKeyring(cfg.KeyringFile, keys); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("gossip keyring: %w", err)
		}
	} else if len(cfg.EncryptKey) > 0 {
		keys = [][]byte{cfg.EncryptKey}
	} else {
		return nil, nil
	}
	kr, err := memberlist.NewKeyring(keys, keys[0])
	if err != nil {
		return nil, fmt.Errorf("gossip keyring: %w", err)
	}
	return kr, nil
}

func writeKeyring(path string, keys [][]byte) error {
	enc := make([]string, len(keys))
	for i, k := range keys {
		enc[i] = base64.StdEncoding.EncodeToString(k)
	}
	data, _ := json.Marshal(enc)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("gossip keyring: %w", err)
	}
	return os.Rename(tmp, path)
}

// KeyStatus is the cluster's view of its gossip keys.
type KeyStatus struct {
	// Members is how many members were asked, Answered how many answered.
	Members, Answered int
	// Keys counts, per base64 key, the members holding it; Primary, the
	// members encrypting with it.
	Keys, Primary map[string]int
	// Errors holds members' error messages, by member.
	Errors map[string]string
	// Failed names members that are failed: they cannot be asked, and
	// would miss a rotation.
	Failed []string
}

// ErrNotEncrypted is returned by key operations on a cluster without encryption.
var ErrNotEncrypted = errors.New("gossip is not encrypted: start the peers with --encrypt to use keys")

// ListKeys asks every member for its keys.
func (g *Gossip) ListKeys() (KeyStatus, error) {
	if !g.serf.EncryptionEnabled() {
		return KeyStatus{}, ErrNotEncrypted
	}
	resp, err := g.serf.KeyManager().ListKeys()
	return g.keyStatus(resp.NumNodes, resp.NumResp, resp.Keys, resp.PrimaryKeys, resp.Messages), err
}

func (g *Gossip) keyStatus(nodes, answered int, keys, primary map[string]int, msgs map[string]string) KeyStatus {
	ks := KeyStatus{Members: nodes, Answered: answered, Keys: keys, Primary: primary, Errors: msgs}
	for _, m := range g.Members() {
		if m.Status == StatusFailed {
			ks.Failed = append(ks.Failed, m.Name)
		}
	}
	sort.Strings(ks.Failed)
	return ks
}

// InstallKey adds a key to every member's keyring (it decrypts at once; it
// encrypts once UseKey makes it primary).
func (g *Gossip) InstallKey(key string) (KeyStatus, error) {
	return g.keyOp(key, g.serf.KeyManager().InstallKey)
}

// UseKey makes an installed key the one every member encrypts with.
func (g *Gossip) UseKey(key string) (KeyStatus, error) {
	return g.keyOp(key, g.serf.KeyManager().UseKey)
}

// RemoveKey removes a key from every keyring. It refuses while any member
// might still need it: a member that is failed (it would come back unable to
// read anyone), that did not answer, or that does not encrypt with one same
// other key yet.
func (g *Gossip) RemoveKey(key string) (KeyStatus, error) {
	if _, err := ParseKey(key); err != nil {
		return KeyStatus{}, err
	}
	ks, err := g.ListKeys()
	if err != nil {
		return ks, err
	}
	switch {
	case len(ks.Failed) > 0:
		return ks, fmt.Errorf("refused: %s failed and could not confirm the new key; it would come back unable to read the cluster (bring it back, or let it be reaped, first)", strings.Join(ks.Failed, ", "))
	case ks.Answered < ks.Members || len(ks.Errors) > 0:
		return ks, fmt.Errorf("refused: %d of %d members answered: every member must confirm the new key first", ks.Answered-len(ks.Errors), ks.Members)
	case ks.Primary[key] > 0:
		return ks, fmt.Errorf("refused: %d members still encrypt with this key: logmesh keys use the new key first", ks.Primary[key])
	case len(ks.Primary) != 1:
		return ks, fmt.Errorf("refused: members encrypt with %d different keys: logmesh keys use one of them first", len(ks.Primary))
	}
	for k, n := range ks.Primary {
		if n != ks.Members || ks.Keys[k] != ks.Members {
			return ks, fmt.Errorf("refused: only %d of %d members use the new key", n, ks.Members)
		}
	}
	return g.keyOp(key, g.serf.KeyManager().RemoveKey)
}

func (g *Gossip) keyOp(key string, op func(string) (*serfKeyResponse, error)) (KeyStatus, error) {
	if !g.serf.EncryptionEnabled() {
		return KeyStatus{}, ErrNotEncrypted
	}
	if _, err := ParseKey(key); err != nil {
		return KeyStatus{}, err
	}
	resp, err := op(key)
	if resp == nil {
		return KeyStatus{}, err
	}
	ks := g.keyStatus(resp.NumNodes, resp.NumResp, resp.Keys, resp.PrimaryKeys, resp.Messages)
	if err == nil && (resp.NumErr > 0 || resp.NumResp < resp.NumNodes) {
		err = fmt.Errorf("%d of %d members confirmed", resp.NumResp-resp.NumErr, resp.NumNodes)
	}
	return ks, err
}
