package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Binary returns the path of a logmesh binary built from this checkout, once
// per test process. Call CleanupBinary from TestMain to remove it.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			build.err = err
			return
		}
		build.dir, build.err = os.MkdirTemp("", "logmesh-bin-")
		if build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "logmesh")
		cmd := exec.Command("go", "build", "-o", build.path, "./cmd/logmesh")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatalf("cannot build logmesh: %v", build.err)
	}
	return build.path
}

// CleanupBinary removes the binary built by Binary, if any.
func CleanupBinary() {
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
}

// ModuleRoot returns the directory of this checkout's go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the logmesh module")
	}
	return filepath.Dir(mod), nil
}
