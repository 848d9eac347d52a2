package repair

import (
	"context"
	"encoding"
	"io"
	"net/http"

	"github.com/logmesh/logmesh/antientropy"
)

// AEPath is the prefix of the anti-entropy endpoints (…/roots, …/buckets, …/exchange).
const AEPath = "/internal/v1/ae/"

const maxAEReply = 1 << 30

// transport carries rounds over the data plane.
type transport struct{ r *Repairer }

func (t *transport) call(ctx context.Context, peer, step string, req encoding.BinaryMarshaler, reply encoding.BinaryUnmarshaler) error {
	return t.r.cfg.Link.Call(ctx, peer, AEPath+step, req, reply, maxAEReply)
}

func (t *transport) Roots(ctx context.Context, peer string, req *antientropy.RootsRequest) (*antientropy.RootsReply, error) {
	reply := &antientropy.RootsReply{}
	return reply, t.call(ctx, peer, "roots", req, reply)
}

func (t *transport) Buckets(ctx context.Context, peer string, req *antientropy.BucketsRequest) (*antientropy.BucketsReply, error) {
	reply := &antientropy.BucketsReply{}
	return reply, t.call(ctx, peer, "buckets", req, reply)
}

func (t *transport) Exchange(ctx context.Context, peer string, req *antientropy.ExchangeRequest) (*antientropy.ExchangeReply, error) {
	reply := &antientropy.ExchangeReply{}
	return reply, t.call(ctx, peer, "exchange", req, reply)
}

// ServeAE answers a step of a round another peer initiated.
func (r *Repairer) ServeAE(w http.ResponseWriter, req *http.Request, step, from string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxAEReply))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	var reply encoding.BinaryMarshaler
	ae := r.ae
	switch step {
	case "roots":
		m := &antientropy.RootsRequest{}
		if err = m.UnmarshalBinary(body); err == nil {
			reply, err = ae.Roots(req.Context(), from, m)
		}
	case "buckets":
		m := &antientropy.BucketsRequest{}
		if err = m.UnmarshalBinary(body); err == nil {
			reply, err = ae.Buckets(req.Context(), from, m)
		}
	case "exchange":
		m := &antientropy.ExchangeRequest{}
		if err = m.UnmarshalBinary(body); err == nil {
			reply, err = ae.Exchange(req.Context(), from, m)
		}
	default:
		httpError(w, http.StatusNotFound, "no such anti-entropy step")
		return
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	out, err := reply.MarshalBinary()
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(out)
}
