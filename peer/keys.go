package peer

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/gossip"
)

// Gossip key rotation: GET /v1/keys lists every member's keys; POST
// /v1/keys/{install,use,remove} with {"key": BASE64} changes them cluster-wide.

func (p *Peer) handleKeys(w http.ResponseWriter, r *http.Request) {
	g := p.cluster.g
	if g == nil {
		writeError(w, http.StatusConflict, "this peer runs alone (no --gossip-addr): no gossip keys")
		return
	}
	var ks gossip.KeyStatus
	var err error
	if r.Method == http.MethodGet {
		ks, err = g.ListKeys()
	} else {
		var req api.KeyRequest
		body, rerr := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
		if rerr != nil || json.Unmarshal(body, &req) != nil || req.Key == "" {
			writeError(w, http.StatusBadRequest, `want a JSON body {"key": "BASE64 KEY"}`)
			return
		}
		switch op := r.PathValue("op"); op {
		case "install":
			ks, err = g.InstallKey(req.Key)
		case "use":
			ks, err = g.UseKey(req.Key)
		case "remove":
			ks, err = g.RemoveKey(req.Key)
		default:
			writeError(w, http.StatusNotFound, "unknown key operation "+op+" (want install, use or remove)")
			return
		}
		if err == nil {
			p.log.Info("gossip key operation done", "op", r.PathValue("op"), "members", ks.Members)
		}
	}
	out := api.KeyStatus{Members: ks.Members, Answered: ks.Answered, Keys: ks.Keys, Primary: ks.Primary, Failed: ks.Failed, Errors: ks.Errors}
	code := http.StatusOK
	if err != nil {
		out.Error = err.Error()
		code = http.StatusConflict
		if errors.Is(err, gossip.ErrNotEncrypted) {
			code = http.StatusBadRequest
		}
	}
	writeJSON(w, code, out)
}
