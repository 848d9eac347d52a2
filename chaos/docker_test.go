package chaos

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/query"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/testutil"
	"github.com/logmesh/logmesh/testutil/ports"
)

// dockerSmoke is the scenario the Docker level runs in make test;
// dockerCI those it runs in CI's fault target (every one in make test-docker).
var (
	dockerSmoke = map[string]bool{"kill9-replica-then-restart": true}
	dockerCI    = map[string]bool{"kill9-replica-then-restart": true, "wipe-and-rejoin": true, "backlog-overflow-then-leave": true}
)

// TestScenariosDocker runs the scenarios on peer containers (level 3).
func TestScenariosDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("fault scenarios take minutes")
	}
	NeedDocker(t)
	for i, sc := range Scenarios(10 * time.Second) {
		switch {
		case faultsCampaign():
		case faultsFull() && dockerCI[sc.Name]:
		case !faultsFull() && dockerSmoke[sc.Name]:
		default:
			continue
		}
		t.Run(sc.Name, func(t *testing.T) {
			s := seed(t, uint64(300+i))
			target := NewDocker(t, max(sc.Peers, 3), 5*time.Second, sc.Options)
			defer target.Close()
			r, err := Run(context.Background(), target, sc, s, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("docker %s", r.Summary())
			if f := r.Failures(); len(f) > 0 {
				t.Fatalf("%s failed: %v\n%s", sc.Name, f, r.Summary())
			}
		})
	}
}

// TestDockerCompose brings up deploy/docker-compose.yml as it ships: three
// peers find each other by service name, a syslog line sent to the
// published port is found through the published API, and a killed peer is
// seen failed.
func TestDockerCompose(t *testing.T) {
	if testing.Short() {
		t.Skip("brings up a Docker Compose cluster")
	}
	NeedDocker(t)
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("skipped: docker-compose not found")
	}
	img := DockerImage(t)
	api, err := ports.Free("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	sl, err := ports.Free("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	_, apiPort, _ := net.SplitHostPort(api)
	_, slPort, _ := net.SplitHostPort(sl)
	project := fmt.Sprintf("lmc%d", os.Getpid())
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "deploy", "docker-compose.yml")
	compose := func(args ...string) error {
		cmd := exec.Command("docker-compose", append([]string{"-p", project, "-f", file}, args...)...)
		cmd.Env = append(os.Environ(), "LOGMESH_IMAGE="+img, "LOGMESH_API_PORT="+apiPort, "LOGMESH_SYSLOG_PORT="+slPort)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("docker-compose %v: %w\n%s", args, err, out)
		}
		return nil
	}
	t.Cleanup(func() {
		if t.Failed() {
			cmd := exec.Command("docker-compose", "-p", project, "-f", file, "logs", "--no-color")
			cmd.Env = append(os.Environ(), "LOGMESH_IMAGE="+img)
			out, _ := cmd.CombinedOutput()
			t.Logf("compose logs:\n%s", out)
		}
		_ = compose("down", "-v", "-t", "2")
	})
	if err := compose("up", "-d"); err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(api)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testutil.Context(t)
	alive := func(want map[string]string) func() bool {
		return func() bool {
			ms, err := cl.Members(ctx)
			if err != nil {
				return false
			}
			got := map[string]string{}
			for _, m := range ms {
				got[m.Name] = m.Status
			}
			for n, st := range want {
				if got[n] != st {
					return false
				}
			}
			return true
		}
	}
	testutil.WaitFor(t, 60*time.Second, "three peers alive through the published API",
		alive(map[string]string{"p1": "alive", "p2": "alive", "p3": "alive"}))

	// a syslog line to the published port, found by a query at p1
	conn, err := net.Dial("tcp", sl)
	if err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("compose-%d", time.Now().UnixNano())
	w := bufio.NewWriter(conn)
	fmt.Fprintf(w, "<14>1 2026-11-25T10:00:00Z web1 nginx 42 - - request %s\n", tag)
	w.Flush()
	conn.Close()
	testutil.WaitFor(t, 30*time.Second, "the syslog line in a cluster query", func() bool {
		var got []string
		_, err := cl.Query(ctx, query.Query{Contains: tag, Limit: 10}, func(r *record.JSON) error {
			got = append(got, r.Message)
			return nil
		})
		return err == nil && len(got) == 1 && strings.Contains(got[0], tag)
	})

	// a killed peer is seen failed by the others
	if err := exec.Command("docker", "kill", project+"_p3_1").Run(); err != nil {
		t.Fatalf("docker kill p3: %v", err)
	}
	testutil.WaitFor(t, 60*time.Second, "p3 failed", alive(map[string]string{"p3": "failed"}))
}
