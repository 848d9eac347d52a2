package testutil

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// TestImportGraph keeps the package layout of docs/architecture.md honest:
// each external library lives in one package, the API types depend on
// nothing but the data model, and replication, repair and query fan-out do
// not reach into each other.
func TestImportGraph(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("skipped: go list failed (%v): the import graph is checked where the go tool runs", err)
	}
	type pkg struct {
		ImportPath string
		Imports    []string
	}
	const mod = "github.com/logmesh/logmesh/"
	imports := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		imports[strings.TrimPrefix(p.ImportPath, mod)] = p.Imports
	}
	// library → the only package that may import it
	libraries := map[string]string{
		"github.com/hashicorp/serf":       "gossip",
		"github.com/hashicorp/memberlist": "gossip",
		"github.com/dgraph-io/badger":     "index",
		"github.com/cbergoon/merkletree":  "antientropy",
		"github.com/urfave/cli":           "cmd/logmesh",
		"github.com/leodido/go-syslog":    "syslog",
	}
	// package → module packages it must not import
	forbidden := map[string][]string{
		"api":            {"syslog", "peer", "index", "gossip"},
		"peer/replicate": {"peer/repair", "peer/fanout", "antientropy"},
		"peer/repair":    {"peer/replicate", "peer/fanout"},
		"peer/fanout":    {"peer/replicate", "peer/repair", "index", "antientropy"},
		"peer/view":      {"index", "peer/link"},
		"record":         {"index", "peer", "api"},
	}
	for p, imps := range imports {
		for _, imp := range imps {
			for lib, owner := range libraries {
				if strings.HasPrefix(imp, lib) && p != owner && !strings.HasPrefix(p, "testutil") {
					t.Errorf("%s imports %s, which only %s may use", p, imp, owner)
				}
			}
			for _, f := range forbidden[p] {
				if imp == mod+f {
					t.Errorf("%s imports %s", p, f)
				}
			}
		}
	}
	if len(imports) < 20 {
		t.Fatalf("go list saw %d packages: the check proves nothing", len(imports))
	}
}
