package peer

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/logmesh/logmesh/api"
)

// handleForget gives up on a failed or departed peer (POST
// /v1/members/{name}/forget, admin). Until then, while it may hold records
// it never pushed, cluster queries say they may miss them; afterwards they
// do not, and what only it held is lost. Every member is told (with
// local=true, each forgets only for itself).
func (p *Peer) handleForget(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == p.cfg.Name {
		writeError(w, http.StatusBadRequest, "a peer cannot forget itself")
		return
	}
	found, err := p.cluster.forget(name)
	if err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	out := api.ForgetResponse{Peer: name, Forgotten: found}
	if r.URL.Query().Get("local") != "true" && p.link != nil {
		v := p.cluster.view()
		var mu sync.Mutex
		var wg sync.WaitGroup
		for other := range v.Members {
			if other == p.cfg.Name || other == name || !v.Usable(other) {
				continue
			}
			wg.Add(1)
			go func(other string) {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
				defer cancel()
				var res api.ForgetResponse
				err := p.postPeerJSON(ctx, other, "/v1/members/"+name+"/forget?local=true", &res)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					out.Errors = append(out.Errors, other+": "+err.Error())
					return
				}
				out.Told = append(out.Told, other)
				out.Forgotten = out.Forgotten || res.Forgotten
			}(other)
		}
		wg.Wait()
	}
	if !out.Forgotten {
		writeJSON(w, http.StatusNotFound, out)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
