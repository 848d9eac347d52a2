package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"

	"github.com/logmesh/logmesh/gossip"
	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/peer"
)

// agent runs `logmesh agent args...` through the real app with a stand-in
// that starts no peer. It returns what the command printed, the config the
// peer would have started with (nil if it would not have started) and the
// error that would make logmesh exit non-zero.
func agent(t *testing.T, args ...string) (string, *peer.Config, error) {
	t.Helper()
	var out bytes.Buffer
	var started *peer.Config
	app := newApp(func(cfg peer.Config) error {
		started = &cfg
		return nil
	})
	app.Writer, app.ErrWriter = &out, io.Discard
	err := app.Run(append([]string{"logmesh", "agent"}, args...))
	return out.String(), started, err
}

// clearAgentEnv unsets every LOGMESH_* variable of the agent for the test,
// so that the machine's environment cannot change the outcome.
func clearAgentEnv(t *testing.T) {
	t.Helper()
	for _, f := range agentFlags() {
		ef, ok := f.(interface{ GetEnvVars() []string })
		if !ok {
			continue
		}
		for _, name := range ef.GetEnvVars() {
			t.Setenv(name, "") // restores the old value after the test
			os.Unsetenv(name)
		}
	}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "logmesh.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigPrecedence(t *testing.T) {
	clearAgentEnv(t)
	file := writeConfig(t, `
replicas = 5
anti-entropy-interval = "45s"
pprof = true
join = ["10.0.0.1:7946", "10.0.0.2:7946"]
`)
	type settings struct {
		Replicas int
		Pprof    bool
		AE       time.Duration
		Seeds    []string
	}
	f := func(name string, env map[string]string, args []string, want settings) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			for k, v := range env {
				t.Setenv(k, v)
			}
			_, cfg, err := agent(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			if cfg == nil {
				t.Fatal("the peer was not started")
			}
			got := settings{cfg.Replicas, cfg.Pprof, cfg.AntiEntropyInterval, cfg.Seeds}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
	fileSeeds := []string{"10.0.0.1:7946", "10.0.0.2:7946"}
	f("defaults", nil, nil, settings{3, false, 30 * time.Second, nil})
	f("file over defaults", nil, []string{"--config", file}, settings{5, true, 45 * time.Second, fileSeeds})
	f("file named by env", map[string]string{"LOGMESH_CONFIG": file}, nil, settings{5, true, 45 * time.Second, fileSeeds})
	f("env over file",
		map[string]string{"LOGMESH_REPLICAS": "6", "LOGMESH_PPROF": "false", "LOGMESH_JOIN": "10.0.0.9:7946"},
		[]string{"--config", file},
		settings{6, false, 45 * time.Second, []string{"10.0.0.9:7946"}})
	f("flag over env and file",
		map[string]string{"LOGMESH_REPLICAS": "6"},
		[]string{"--config", file, "--replicas", "7", "--join", "10.0.0.8:7946", "--anti-entropy-interval", "1m"},
		settings{7, true, time.Minute, []string{"10.0.0.8:7946"}})
	f("flag off over file on", nil, []string{"--config", file, "--pprof=false"}, settings{5, false, 45 * time.Second, fileSeeds})
}

func TestConfigFlagHidesBadFileValue(t *testing.T) {
	clearAgentEnv(t)
	file := writeConfig(t, `max-hints-bytes = "lots"`)
	_, cfg, err := agent(t, "--config", file, "--max-hints-bytes", "2MiB")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxHintsBytes != 2<<20 {
		t.Fatalf("max hints bytes %d, want %d", cfg.MaxHintsBytes, 2<<20)
	}
}

func TestConfigJoinReachesPeerConfig(t *testing.T) {
	clearAgentEnv(t)
	file := writeConfig(t, `join = ["10.0.0.1:7946,10.0.0.2:7946", "peer3.example:7946"]`)
	_, cfg, err := agent(t, "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.1:7946", "10.0.0.2:7946", "peer3.example:7946"}
	if !slices.Equal(cfg.Seeds, want) {
		t.Fatalf("seeds %q, want %q", cfg.Seeds, want)
	}
	if cfg.GossipAddr != ":7946" {
		t.Fatalf("gossip address %q, want the default :7946 once there are seeds", cfg.GossipAddr)
	}
}

func TestConfigErrors(t *testing.T) {
	clearAgentEnv(t)
	f := func(text string, want string, args ...string) {
		t.Helper()
		file := writeConfig(t, text)
		out, cfg, err := agent(t, append([]string{"--config", file, "--print-config"}, args...)...)
		if err == nil {
			t.Fatalf("%s: no error; printed:\n%s", text, out)
		}
		if want = strings.ReplaceAll(want, "FILE", file); err.Error() != want {
			t.Fatalf("%s:\n got %s\nwant %s", text, err, want)
		}
		if cfg != nil || out != "" {
			t.Fatalf("%s: the agent went on after the error (printed %q)", text, out)
		}
	}
	// Keys that no flag has, or that only the command line may set.
	f(`replicaz = 3`, `config FILE: unknown key "replicaz" (did you mean "replicas"?)`)
	f(`Data_Dir = "/tmp/x"`, `config FILE: unknown key "Data_Dir" (did you mean "data-dir"?)`)
	f(`colour = "red"`, `config FILE: unknown key "colour"`)
	f("replicas = 3\n[gossip]\nport = 7946", `config FILE: unknown key "gossip"`)
	f(`disable-replication = true`, `config FILE: key "disable-replication" is accepted only on the command line`)
	f(`config = "other.toml"`, `config FILE: key "config" is accepted only on the command line`)

	// Values the flag does not take.
	f(`replicas = "three"`, `config FILE: key "replicas" = "three": invalid value: parse error (want a whole number)`)
	f(`replicas = 2.5`, `config FILE: key "replicas" = 2.5: invalid value: parse error (want a whole number)`)
	f(`replicas = { n = 3 }`, `config FILE: key "replicas" = {n = 3}: invalid value: want a whole number`)
	f(`replicas.n = 3`, `config FILE: key "replicas" = {n = 3}: invalid value: want a whole number`)
	f(`name = ["p1", "p2"]`, `config FILE: key "name" = ["p1", "p2"]: invalid value: want a string`)
	f(`join = ["10.0.0.1:7946", ["nested"]]`, `config FILE: key "join" = ["10.0.0.1:7946", ["nested"]]: invalid value: want a list of strings`)
	f(`pprof = "yes"`, `config FILE: key "pprof" = "yes": invalid value: parse error (want true or false)`)
	f(`anti-entropy-interval = "soon"`,
		`config FILE: key "anti-entropy-interval" = "soon": invalid value: parse error (want a duration such as 30s or 5m)`)

	// Values the agent rejects when it builds the peer configuration.
	f(`max-hints-bytes = "lots"`, `config FILE: key "max-hints-bytes" = "lots": invalid value: "lots" is not a size (like 65536, 64KiB or 8MiB)`)
	f(`retention = "a week"`, `config FILE: key "retention" = "a week": invalid value: "a week" is not a duration (like 90m, 36h or 7d)`)
	f(`fsync = "sometimes"`, `config FILE: key "fsync" = "sometimes": invalid value: "sometimes" is not "always" or an interval such as 100ms`)
	f(`query-workers = 0`, `config FILE: key "query-workers" = 0: invalid value: 0: at least 1`)
	f(`seal-capture = "plenty"`, `config FILE: key "seal-capture" = "plenty": invalid value: "plenty" is not off or a size like 64MiB`)
	f(`table-compression = "lz4"`, `config FILE: key "table-compression" = "lz4": invalid value: "lz4" is neither zstd nor none`)
	f(`log-level = "loud"`, `config FILE: key "log-level" = "loud": invalid value: "loud" is not debug, info, warn or error`)
	f(`encrypt = "c2VjcmV0"`, `config FILE: key "encrypt" = (the key is not shown): invalid value: gossip key has 6 bytes, want 16, 24 or 32`)

	// A bad flag is reported as the flag even when a file is in use.
	f(`replicas = 5`, `--max-hints-bytes: "lots" is not a size (like 65536, 64KiB or 8MiB)`, "--max-hints-bytes", "lots")

	// TOML syntax, as the TOML library reports it.
	f("replicas = 3\nname = \n", `config FILE: toml: line 2 (last key "name"): expected value but found '\n' instead`)
	f("replicas = 3\nreplicas = 4\n", `config FILE: toml: line 2 (last key "replicas"): Key 'replicas' has already been defined.`)
}

func TestConfigMissingFile(t *testing.T) {
	clearAgentEnv(t)
	path := filepath.Join(t.TempDir(), "missing.toml")
	_, cfg, err := agent(t, "--config", path)
	if err == nil || cfg != nil || !strings.HasPrefix(err.Error(), "config "+path+": open ") {
		t.Fatalf("got error %v (started: %v), want one that names the file", err, cfg != nil)
	}
}

// fileKeysInOrder are the keys --print-config must print: every visible
// agent flag but the two about the config file itself.
func fileKeysInOrder() []string {
	var keys []string
	for _, f := range agentFlags() {
		name := f.Names()[0]
		if f.(cli.VisibleFlag).IsVisible() && name != "config" && name != "print-config" {
			keys = append(keys, name)
		}
	}
	return keys
}

func TestPrintConfigRoundTrip(t *testing.T) {
	clearAgentEnv(t)
	t.Setenv("LOGMESH_RETENTION", "36h")
	file := writeConfig(t, `
replicas = 5
join = ["10.0.0.1:7946", "10.0.0.2:7946"]
anti-entropy-interval = "90s"
failed-reassign-after = "150m"
name = "from-file"
`)
	args := []string{"--config", file, "--name", "p1", "--pprof", "--max-hints-bytes", "2GiB", "--test-timings"}
	_, want, err := agent(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	printed, cfg, err := agent(t, append(args, "--print-config")...)
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		t.Fatal("--print-config started the peer")
	}
	for _, line := range []string{
		`name = "p1"`, `replicas = 5`, `join = ["10.0.0.1:7946", "10.0.0.2:7946"]`, `anti-entropy-interval = "1m30s"`,
		`failed-reassign-after = "2h30m"`, `retention = "36h"`, `pprof = true`, `max-hints-bytes = "2GiB"`,
	} {
		if !slices.Contains(strings.Split(printed, "\n"), line) {
			t.Errorf("printed config lacks %s:\n%s", line, printed)
		}
	}
	var values map[string]any
	md, err := toml.Decode(printed, &values)
	if err != nil {
		t.Fatalf("printed config is not TOML: %v\n%s", err, printed)
	}
	var keys []string
	for _, k := range md.Keys() {
		keys = append(keys, k.String())
	}
	if want := fileKeysInOrder(); !slices.Equal(keys, want) {
		t.Fatalf("printed keys\n%q\nwant every visible agent flag in flag order\n%q", keys, want)
	}

	// Read back alone, with neither flags nor environment, it prints the same and configures the same peer.
	clearAgentEnv(t)
	again := writeConfig(t, printed)
	reprinted, _, err := agent(t, "--config", again, "--print-config")
	if err != nil {
		t.Fatal(err)
	}
	if reprinted != printed {
		t.Fatalf("printed config read back prints differently:\n%s\nthen:\n%s", printed, reprinted)
	}
	_, got, err := agent(t, "--config", again, "--test-timings")
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []*peer.Config{want, got} {
		cfg.Logger, cfg.Index.Now, cfg.Index.Logger = nil, nil, nil
	}
	// funcs are never DeepEqual; printed, the same function prints the same
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("printed config read back configures\n%+v\nwant\n%+v", got, want)
	}
}

func TestFormatDuration(t *testing.T) {
	f := func(d time.Duration, want string) {
		t.Helper()
		if got := formatDuration(d); got != want {
			t.Fatalf("formatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(want); err != nil || back != d {
			t.Fatalf("%q parses as %v, %v; want %v", want, back, err, d)
		}
	}
	f(0, "0s")
	f(30*time.Second, "30s")
	f(90*time.Second, "1m30s")
	f(time.Hour, "1h")
	f(150*time.Minute, "2h30m")
	f(2*time.Hour+5*time.Second, "2h0m5s")
	f(1500*time.Millisecond, "1.5s")
}

// TestExampleConfig keeps deploy/logmesh.toml in step with the flags: it
// lists every key once, commented out with its default, and loads both as
// it is and with every key uncommented.
func TestExampleConfig(t *testing.T) {
	clearAgentEnv(t)
	const example = "../../deploy/logmesh.toml"
	text, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	defaults, _, err := agent(t, "--print-config")
	if err != nil {
		t.Fatal(err)
	}
	defaultLine := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(defaults), "\n") {
		defaultLine[strings.SplitN(line, " = ", 2)[0]] = line
	}
	setting := regexp.MustCompile(`^# ?([a-z0-9-]+ = .*)$`)
	var keys, uncommented []string
	for _, line := range strings.Split(string(text), "\n") {
		m := setting.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		key := strings.SplitN(m[1], " = ", 2)[0]
		keys = append(keys, key)
		uncommented = append(uncommented, m[1])
		if key != "name" && m[1] != defaultLine[key] { // name defaults to the host name
			t.Errorf("%s shows %s, but the default is %s", example, m[1], defaultLine[key])
		}
	}
	if want := fileKeysInOrder(); !slices.Equal(keys, want) {
		t.Fatalf("%s lists\n%q\nwant every key in flag order\n%q", example, keys, want)
	}
	if _, _, err := agent(t, "--config", example, "--print-config"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := agent(t, "--config", writeConfig(t, strings.Join(uncommented, "\n")), "--print-config"); err != nil {
		t.Fatalf("%s with every key uncommented: %v", example, err)
	}
}

func TestMemoryLimit(t *testing.T) {
	store := index.Config{Dir: "x"}
	t.Setenv("GOMEMLIMIT", "")
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"auto", 224 << 20},
		{"", 224 << 20},
		{"off", 0},
		{"0", 0},
		{"512MiB", 512 << 20},
	} {
		got, err := memoryLimit(c.in, store)
		if err != nil || got != c.want {
			t.Errorf("memoryLimit(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	if _, err := memoryLimit("lots", store); err == nil || !strings.Contains(err.Error(), `"lots" is not auto, off or a size`) {
		t.Errorf("memoryLimit(lots) error %v", err)
	}
	big := index.Config{Dir: "x", MemTableBytes: 64 << 20}
	if got, _ := memoryLimit("auto", big); got != (4*2*64+32+16+48)<<20 {
		t.Errorf("auto with 64MiB memtables = %d MiB", got>>20)
	}
	t.Setenv("GOMEMLIMIT", "1GiB")
	if got, _ := memoryLimit("auto", store); got != 0 {
		t.Errorf("auto with GOMEMLIMIT set = %d, want 0 (the runtime's own)", got)
	}
}

func TestSizeOrOff(t *testing.T) {
	for _, c := range []struct {
		v    string
		auto bool
		want int64
		err  string
	}{
		{"off", false, -1, ""},
		{"64MiB", false, 64 << 20, ""},
		{"auto", true, 0, ""},
		{"", true, 0, ""},
		{"auto", false, 0, `"auto" is not off or a size like 64MiB`},
		{"0", true, 0, `"0" is not auto, off or a size like 64MiB`},
		{"lots", true, 0, `"lots" is not auto, off or a size like 64MiB`},
	} {
		got, err := sizeOrOff(c.v, c.auto, "64MiB")
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("sizeOrOff(%q, %v) error %v, want %s", c.v, c.auto, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("sizeOrOff(%q, %v) = %d, %v, want %d", c.v, c.auto, got, err, c.want)
		}
	}
}

// TestKeyFile: keygen --out writes a key once and keeps it after; the
// agent reads it with --encrypt-file, refuses it with --encrypt too, and
// passes --insecure-gossip on.
func TestKeyFile(t *testing.T) {
	clearAgentEnv(t)
	file := filepath.Join(t.TempDir(), "gossip.key")
	keygen := func() {
		app := newApp(func(peer.Config) error { return nil })
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		if err := app.Run([]string{"logmesh", "keygen", "--out", file}); err != nil {
			t.Fatal(err)
		}
	}
	keygen()
	first, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	keygen()
	if again, _ := os.ReadFile(file); !bytes.Equal(first, again) {
		t.Fatal("a second keygen --out replaced the key: peers started with the first could not talk to new ones")
	}
	_, cfg, err := agent(t, "--encrypt-file", file, "--insecure-gossip")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := gossip.ParseKey(strings.TrimSpace(string(first)))
	if !bytes.Equal(cfg.EncryptKey, want) || !cfg.InsecureGossip {
		t.Fatalf("agent key %x insecure %v, want %x and true", cfg.EncryptKey, cfg.InsecureGossip, want)
	}
	if _, _, err := agent(t, "--encrypt-file", file, "--encrypt", strings.TrimSpace(string(first))); err == nil {
		t.Fatal("--encrypt and --encrypt-file together were accepted")
	}
	if err := os.WriteFile(file, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := agent(t, "--encrypt-file", file); err == nil || !strings.Contains(err.Error(), "gossip key file") {
		t.Fatalf("a bad key file: %v", err)
	}
}
