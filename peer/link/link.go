// Package link carries the data plane between peers: HTTP calls to another
// member's API, addressed by member name, stamped with the caller's name,
// protocol version and clock, and measuring the callee's clock from its
// answer (package clock). Replication, repair and query fan-out all call
// through one Client, which tests replace the dialer of to cut links.
package link

import (
	"bytes"
	"context"
	"encoding"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/logmesh/logmesh/peer/clock"
	"github.com/logmesh/logmesh/peer/view"
)

// Headers of data-plane calls.
const (
	HeaderFrom  = "X-Logmesh-From"
	HeaderProto = "X-Logmesh-Proto"
	// HeaderSync asks the callee to sync what it stores before answering,
	// whatever its own fsync policy (see replicate).
	HeaderSync = "X-Logmesh-Sync"
)

// Config configures a Client.
type Config struct {
	// Self is this peer's name, sent in HeaderFrom.
	Self string
	// Proto is the protocol version, sent in HeaderProto.
	Proto string
	// Scheme is "http://" or "https://".
	Scheme func() string
	// View resolves member names to API addresses.
	View func() *view.View
	// Clock, when set, stamps requests and takes samples from answers.
	Clock *clock.Tracker
	// Now is the clock of the stamps (default time.Now).
	Now func() time.Time
	// Transport carries the calls (mutual TLS, fault injection).
	Transport http.RoundTripper
	// Keys, when set and returning any, are the gossip keys: calls are
	// signed with the first (see HeaderSig).
	Keys func() [][]byte
}

// Client calls other peers.
type Client struct {
	cfg Config
	hc  *http.Client
}

// New returns a client.
func New(cfg Config) *Client {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// No overall timeout: a query streams for as long as it has records;
	// callers bound their calls with contexts.
	return &Client{cfg: cfg, hc: &http.Client{Transport: cfg.Transport}}
}

// HTTP returns the underlying HTTP client (for calls by address).
func (c *Client) HTTP() *http.Client { return c.hc }

// StatusError is an answer other than 200.
type StatusError struct {
	Peer string
	Code int
	Msg  string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s answered %d: %s", e.Peer, e.Code, e.Msg)
}

// StatusLeaving answers a peer-to-peer call a leaving peer refuses: it
// takes no more records and vouches for none.
const StatusLeaving = http.StatusConflict

// IsLeaving reports whether err is a refusal by a leaving peer.
func IsLeaving(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == StatusLeaving
}

// ErrNoAddress: the member published no API address.
var ErrNoAddress = errors.New("link: the peer published no API address")

// Do sends a request to member peer's API and returns its answer, which
// the caller must close. An answer other than 200 is a *StatusError.
func (c *Client) Do(ctx context.Context, peer, method, path string, body io.Reader, hdr http.Header) (*http.Response, error) {
	addr := c.cfg.View().APIAddr(peer)
	if addr == "" {
		return nil, fmt.Errorf("%s: %w", peer, ErrNoAddress)
	}
	return c.DoAddr(ctx, peer, addr, method, path, body, hdr)
}

// DoAddr is Do to a known address.
func (c *Client) DoAddr(ctx context.Context, peer, addr, method, path string, body io.Reader, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.Scheme()+addr+path, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set(HeaderFrom, c.cfg.Self)
	req.Header.Set(HeaderProto, c.cfg.Proto)
	if c.cfg.Clock != nil {
		req.Header.Set(clock.Header, c.cfg.Clock.Stamp())
	}
	if c.cfg.Keys != nil {
		if keys := c.cfg.Keys(); len(keys) > 0 {
			Sign(req, keys[0])
		}
	}
	sent := c.cfg.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, unwrapURL(err)
	}
	if c.cfg.Clock != nil {
		c.cfg.Clock.ObserveHeader(peer, sent, c.cfg.Now(), resp.Header.Get(clock.Header))
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, &StatusError{Peer: peer, Code: resp.StatusCode, Msg: string(bytes.TrimSpace(msg))}
	}
	return resp, nil
}

// Call posts a binary message to path at peer and decodes the binary answer
// (at most maxReply bytes).
func (c *Client) Call(ctx context.Context, peer, path string, req encoding.BinaryMarshaler, reply encoding.BinaryUnmarshaler, maxReply int64) error {
	body, err := req.MarshalBinary()
	if err != nil {
		return err
	}
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	resp, err := c.Do(ctx, peer, http.MethodPost, path, bytes.NewReader(body), hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return fmt.Errorf("%s: reading the answer: %w", peer, err)
	}
	if int64(len(b)) > maxReply {
		return fmt.Errorf("%s: answer longer than %d bytes", peer, maxReply)
	}
	return reply.UnmarshalBinary(b)
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
