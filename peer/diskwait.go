package peer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/logmesh/logmesh/index"
)

// spacePollInterval is how often a peer waiting for disk space measures it.
var spacePollInterval = 2 * time.Second

// WaitForDiskSpace returns at once when the store's disk has the free space
// it needs to open. Otherwise (Badger would replay its log through memory
// maps into a full disk and die of SIGBUS) the peer serves its API address
// without a store: writes are refused with 507 and every other request
// with 503, each saying what is wrong, /healthz answers 503 and /metrics
// says logmesh_store_waiting_for_space 1. It measures the free space every
// few seconds and returns nil once the store can open, or ctx's error. The
// caller then starts the peer. Syslog is not listened to meanwhile:
// senders keep their queues, and the other peers answer for this one's
// partitions.
func (p *Peer) WaitForDiskSpace(ctx context.Context) error {
	cause := index.CheckOpenSpace(p.cfg.Index)
	if cause == nil || !errors.Is(cause, index.ErrNoSpace) {
		return nil // Start reports any other error
	}
	p.log.Error("the disk is too full to open the store: writes are refused until space is freed, then the peer starts by itself",
		"err", cause)
	ln, err := p.listenAPI()
	if err != nil {
		return fmt.Errorf("cannot listen for the API on %s while waiting for disk space: %w", p.cfg.APIAddr, err)
	}
	if p.sec.tls != nil {
		ln = tls.NewListener(ln, p.sec.tls.ServerConfig())
	}
	var why atomic.Pointer[error] // the latest measurement, for the answers
	why.Store(&cause)
	msg := func() string {
		return fmt.Sprintf("this peer is not serving: the disk of its data directory is too full to open its store (%v); "+
			"it starts by itself once space is freed, and the other peers answer for its data meanwhile", *why.Load())
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "10")
			switch {
			case r.URL.Path == "/metrics":
				w.Header().Set("Content-Type", "text/plain; version=0.0.4")
				fmt.Fprint(w, "# HELP logmesh_store_waiting_for_space 1 while the peer waits for disk space to open its store.\n"+
					"# TYPE logmesh_store_waiting_for_space gauge\nlogmesh_store_waiting_for_space 1\n")
			case r.URL.Path == "/healthz":
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, msg())
			case r.Method == http.MethodPost || r.Method == http.MethodPut:
				writeError(w, http.StatusInsufficientStorage, "nothing was stored: "+msg())
			default:
				writeError(w, http.StatusServiceUnavailable, msg())
			}
		}),
		ReadHeaderTimeout: p.cfg.APIHeaderTimeout,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       time.Minute,
		ErrorLog:          slogLogger(p.log),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
		<-served
	}()
	tick := time.NewTicker(spacePollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-served:
			served <- err // for the deferred wait
			return fmt.Errorf("serving the API while waiting for disk space: %w", err)
		case <-tick.C:
		}
		err := index.CheckOpenSpace(p.cfg.Index)
		if err == nil {
			p.log.Info("disk space is back: opening the store")
			return nil
		}
		why.Store(&err)
	}
}
