package peer

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/query"
	"github.com/logmesh/logmesh/record"
)

// handleGetLogs streams the records matching the query as NDJSON.
func (p *Peer) handleGetLogs(w http.ResponseWriter, r *http.Request) {
	q, err := query.Parse(r.URL.Query(), p.cfg.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	flusher, _ := w.(http.Flusher)
	n := 0
	err = p.localQuery(r, q, func(id record.ID, data []byte) error {
		rec, err := record.Decode(id, data)
		if err != nil {
			return err
		}
		if err := enc.Encode(rec.ToJSON()); err != nil {
			return err
		}
		n++
		if n%256 == 0 && flusher != nil {
			if err := bw.Flush(); err != nil {
				return err
			}
			flusher.Flush()
		}
		return nil
	})
	if err != nil && !errors.Is(err, r.Context().Err()) {
		p.log.Warn("query failed", "err", err)
		// the status line is gone; end the stream with an error object
		_ = enc.Encode(api.Error{Error: "query failed: " + err.Error()})
	}
	_ = bw.Flush()
}

// localQuery runs q against this peer's store, calling fn in order.
func (p *Peer) localQuery(r *http.Request, q query.Query, fn func(record.ID, []byte) error) error {
	from, to := q.Range()
	opts := index.ScanOptions{FromMillis: from, ToMillis: to, Reverse: !q.Ascending, Match: q.Matcher()}
	if q.Filtering() {
		opts.Workers = p.cfg.QueryWorkers
	}
	n := 0
	return p.db.Scan(r.Context(), opts, func(id record.ID, data []byte) error {
		if err := fn(id, data); err != nil {
			return err
		}
		n++
		if q.Limit > 0 && n >= q.Limit {
			return index.ErrStop
		}
		return nil
	})
}
