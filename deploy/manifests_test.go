package deploy_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/logmesh/logmesh/testutil"
)

// TestKubernetesManifests parses deploy/kubernetes/logmesh.yaml and checks
// what the cluster depends on: peers find each other through a headless
// service that publishes pods before they are ready, the StatefulSet's probes
// ask /healthz, a stop has time for a graceful leave, and every LOGMESH_*
// variable is one the agent reads.
func TestKubernetesManifests(t *testing.T) {
	docs := yamlDocs(t, filepath.Join("kubernetes", "logmesh.yaml"))

	headless := object(t, docs, "Service", "logmesh-headless")
	want(t, "headless service clusterIP", dig(headless, "spec", "clusterIP"), "None")
	want(t, "headless service publishNotReadyAddresses", dig(headless, "spec", "publishNotReadyAddresses"), true)
	for _, p := range []string{"7946/TCP", "7946/UDP", "7070/TCP", "5514/TCP", "5514/UDP"} {
		if !slices.Contains(servicePorts(headless), p) {
			t.Errorf("headless service lacks port %s (has %v)", p, servicePorts(headless))
		}
	}
	client := object(t, docs, "Service", "logmesh")
	for _, p := range []string{"7070/TCP", "5514/TCP", "5514/UDP"} {
		if !slices.Contains(servicePorts(client), p) {
			t.Errorf("client service lacks port %s (has %v)", p, servicePorts(client))
		}
	}

	sts := object(t, docs, "StatefulSet", "logmesh")
	want(t, "serviceName", dig(sts, "spec", "serviceName"), "logmesh-headless")
	want(t, "podManagementPolicy", dig(sts, "spec", "podManagementPolicy"), "Parallel")
	want(t, "replicas", dig(sts, "spec", "replicas"), 3.0)
	pod := dig(sts, "spec", "template", "spec")
	if g, _ := dig(pod, "terminationGracePeriodSeconds").(float64); g < 30 {
		t.Errorf("terminationGracePeriodSeconds %v: a graceful leave needs up to ~11s plus closing the store", g)
	}
	want(t, "runAsNonRoot", dig(pod, "securityContext", "runAsNonRoot"), true)
	c := dig(pod, "containers", 0)
	want(t, "readiness probe path", dig(c, "readinessProbe", "httpGet", "path"), "/healthz")
	want(t, "liveness probe path", dig(c, "livenessProbe", "httpGet", "path"), "/healthz")
	want(t, "readOnlyRootFilesystem", dig(c, "securityContext", "readOnlyRootFilesystem"), true)
	want(t, "data volume mount", dig(c, "volumeMounts", 0, "mountPath"), "/data")
	want(t, "volume claim", dig(sts, "spec", "volumeClaimTemplates", 0, "metadata", "name"), "data")

	known := agentEnv(t)
	env, _ := dig(c, "env").([]any)
	var seen []string
	for _, e := range env {
		name, _ := dig(e, "name").(string)
		seen = append(seen, name)
		if strings.HasPrefix(name, "LOGMESH_") && !known[name] {
			t.Errorf("env %s is not a variable the agent reads", name)
		}
	}
	for _, name := range []string{"LOGMESH_NAME", "LOGMESH_DATA_DIR", "LOGMESH_GOSSIP_ADDR", "LOGMESH_ADVERTISE", "LOGMESH_JOIN"} {
		if !slices.Contains(seen, name) {
			t.Errorf("the StatefulSet does not set %s", name)
		}
	}

	pdb := object(t, docs, "PodDisruptionBudget", "logmesh")
	want(t, "PodDisruptionBudget maxUnavailable", dig(pdb, "spec", "maxUnavailable"), 1.0)
}

// TestSystemdUnit checks that deploy/systemd/logmesh.service runs the agent
// with flags it has and, where systemd-analyze is installed, that systemd
// accepts the unit.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile(filepath.Join("systemd", "logmesh.service"))
	if err != nil {
		t.Fatal(err)
	}
	var execStart []string
	for _, l := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			execStart = strings.Fields(v)
		}
	}
	if len(execStart) < 2 || execStart[0] != "/usr/local/bin/logmesh" || execStart[1] != "agent" {
		t.Fatalf("ExecStart runs %q, want /usr/local/bin/logmesh agent ...", execStart)
	}
	flags := agentFlags(t)
	for _, a := range execStart[2:] {
		if name, ok := strings.CutPrefix(a, "--"); ok && !flags[name] {
			t.Errorf("ExecStart passes %s, which the agent does not have", a)
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: the unit's syntax is not checked")
		return
	}
	// verify checks that ExecStart's binary exists: point it at the test's
	path := filepath.Join(t.TempDir(), "logmesh.service")
	rendered := strings.Replace(string(unit), "ExecStart=/usr/local/bin/logmesh", "ExecStart="+testutil.Binary(t), 1)
	if err := os.WriteFile(path, []byte(rendered), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	if len(out) > 0 {
		t.Logf("systemd-analyze verify:\n%s", out)
	}
}

// yamlDocs returns the documents of a YAML file as JSON values (through
// JSON, so that numbers and maps have the types the checks expect).
func yamlDocs(t *testing.T, path string) []any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var docs []any
	for {
		var d any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s does not parse as YAML: %v", path, err)
		}
		if d == nil {
			continue
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("%s: a document does not convert to JSON: %v", path, err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, v)
	}
	return docs
}

// object returns the document of kind named name.
func object(t *testing.T, docs []any, kind, name string) any {
	t.Helper()
	for _, d := range docs {
		if dig(d, "kind") == kind && dig(d, "metadata", "name") == name {
			return d
		}
	}
	t.Fatalf("no %s named %s", kind, name)
	return nil
}

// dig follows map keys (strings) and list indexes (ints) into v; nil when a
// step is missing.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func want(t *testing.T, what string, got, want any) {
	t.Helper()
	if got != want {
		t.Errorf("%s is %v, want %v", what, got, want)
	}
}

// servicePorts returns a service's ports as "7946/UDP".
func servicePorts(svc any) []string {
	var out []string
	ports, _ := dig(svc, "spec", "ports").([]any)
	for _, p := range ports {
		proto, _ := dig(p, "protocol").(string)
		if proto == "" {
			proto = "TCP"
		}
		port, _ := dig(p, "port").(float64)
		out = append(out, fmt.Sprintf("%d/%s", int(port), proto))
	}
	return out
}

// agentHelp returns the output of `logmesh agent --help`.
func agentHelp(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(testutil.Binary(t), "agent", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("logmesh agent --help: %v\n%s", err, out)
	}
	return string(out)
}

// agentFlags returns the agent's flag names (without "--").
func agentFlags(t *testing.T) map[string]bool {
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+--([a-z0-9-]+)`).FindAllStringSubmatch(agentHelp(t), -1) {
		flags[m[1]] = true
	}
	return flags
}

// agentEnv returns the environment variables the agent's flags read.
func agentEnv(t *testing.T) map[string]bool {
	env := map[string]bool{}
	for _, m := range regexp.MustCompile(`\[\$(LOGMESH_[A-Z0-9_]+)\]`).FindAllStringSubmatch(agentHelp(t), -1) {
		env[m[1]] = true
	}
	return env
}
