// Package client talks to a logmesh peer's HTTP API. The CLI's query, tail,
// ingest and status commands are built on it.
package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/query"
	"github.com/logmesh/logmesh/record"
)

// Client is an API client for one peer.
type Client struct {
	base *url.URL
	http *http.Client
	// Token, when set, is sent as a bearer token.
	Token string
}

// New returns a client for the peer at addr ("host:port" or an http(s) URL).
func New(addr string) (*Client, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("peer address %q is not host:port or a URL", addr)
	}
	return &Client{base: u, http: &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     90 * time.Second,
	}}}, nil
}

// WithTLS makes the client speak HTTPS with cfg (nil: the system's roots).
func (c *Client) WithTLS(cfg *tls.Config) *Client {
	c.base.Scheme = "https"
	if tr, ok := c.http.Transport.(*http.Transport); ok {
		tr.TLSClientConfig = cfg
	}
	return c
}

// CloseIdleConnections closes the keep-alive connections not in use.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// Addr returns the peer's base URL.
func (c *Client) Addr() string { return c.base.String() }

func (c *Client) newRequest(ctx context.Context, method, path string, params url.Values, body io.Reader) (*http.Request, error) {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = params.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req, nil
}

func (c *Client) do(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the peer at %s: %w", c.base.Host, unwrapURLError(err))
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e api.Error
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, &StatusError{Code: resp.StatusCode, Message: e.Error}
		}
		return nil, &StatusError{Code: resp.StatusCode, Message: strings.TrimSpace(string(b))}
	}
	return resp, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// StatusError is an answer other than 2xx.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("the peer answered %d %s", e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("the peer answered %d: %s", e.Code, e.Message)
}

// Ingest posts a batch: NDJSON records, or text lines with contentType "text/plain".
func (c *Client) Ingest(ctx context.Context, body []byte, contentType string, params url.Values) (api.IngestResponse, error) {
	return c.IngestOnce(ctx, body, contentType, params, "")
}

// IngestOnce is Ingest with an idempotency key: retried with the same key
// (against the same peer, within a day), the batch is stored once whatever
// happened to earlier attempts. An empty key sends none.
func (c *Client) IngestOnce(ctx context.Context, body []byte, contentType string, params url.Values, key string) (api.IngestResponse, error) {
	var out api.IngestResponse
	req, err := c.newRequest(ctx, http.MethodPost, "/v1/logs", params, bytes.NewReader(body))
	if err != nil {
		return out, err
	}
	req.Header.Set("Content-Type", contentType)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("cannot read the peer's answer: %w", err)
	}
	return out, nil
}

// Coverage says how much of the cluster's data an answer covers.
type Coverage struct {
	// State is "full", "partial" (some partitions had no live replica, or a
	// peer failed while answering) or "local" (one peer's store only).
	State string
	// Missing lists the partitions no complete replica answered for.
	Missing string
	// Unread names peers that could not be read and may hold records not
	// yet on other peers, each with the time from which (name@RFC3339, or
	// name@- for any time), comma-separated.
	Unread string
	// Reason is the peer's word on why a stream that had begun ended
	// partial (a peer failed while answering, the query timed out).
	Reason string
}

// Partial reports whether the answer may lack records.
func (c Coverage) Partial() bool { return c.State == "partial" }

// Query streams the records matching q to fn, in the order the peer sends
// them, and returns how much of the cluster's data the answer covers.
func (c *Client) Query(ctx context.Context, q query.Query, fn func(*record.JSON) error) (Coverage, error) {
	var cov Coverage
	err := c.query(ctx, q, fn, &cov)
	return cov, err
}

func (c *Client) query(ctx context.Context, q query.Query, fn func(*record.JSON) error, cov *Coverage) error {
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/logs", q.Values(), nil)
	if err != nil {
		return err
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	cov.State, cov.Missing = resp.Header.Get("X-Logmesh-Coverage"), resp.Header.Get("X-Logmesh-Missing")
	cov.Unread = resp.Header.Get("X-Logmesh-Unread")
	defer func() {
		if t := resp.Trailer.Get("X-Logmesh-Coverage"); t != "" {
			cov.State = t
		}
	}()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var j record.JSON
		if err := json.Unmarshal(line, &j); err != nil {
			return fmt.Errorf("cannot read the peer's answer: %w", err)
		}
		if j.ID == "" { // an error object ends a stream that had already begun
			var e api.Error
			if json.Unmarshal(line, &e) == nil && e.Error != "" {
				if strings.HasPrefix(e.Error, "partial answer") {
					cov.State, cov.Reason = "partial", e.Error
					return nil
				}
				return errors.New(e.Error)
			}
		}
		if err := fn(&j); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("query stream broke: %w", err)
	}
	return nil
}

// Count returns how many records match q (its limit is ignored), with the
// answer's coverage.
func (c *Client) Count(ctx context.Context, q query.Query) (api.Count, error) {
	v := q.Values()
	v.Set("count", "true")
	v.Del("limit")
	var out api.Count
	err := c.getJSON(ctx, "/v1/logs", v, &out)
	return out, err
}

// Status returns the peer's status.
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var s api.Status
	err := c.getJSON(ctx, "/v1/status", nil, &s)
	return s, err
}

func (c *Client) getJSON(ctx context.Context, path string, params url.Values, out any) error {
	req, err := c.newRequest(ctx, http.MethodGet, path, params, nil)
	if err != nil {
		return err
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("cannot read the peer's answer to %s: %w", path, err)
	}
	return nil
}

// Healthy reports whether the peer answers /healthz.
func (c *Client) Healthy(ctx context.Context) error {
	req, err := c.newRequest(ctx, http.MethodGet, "/healthz", nil, nil)
	if err != nil {
		return err
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Members returns the cluster's members as the peer sees them.
func (c *Client) Members(ctx context.Context) ([]api.Member, error) {
	var out []api.Member
	err := c.getJSON(ctx, "/v1/members", nil, &out)
	return out, err
}

// Cluster returns every member's status, gathered by the peer.
func (c *Client) Cluster(ctx context.Context) (api.ClusterStatus, error) {
	var out api.ClusterStatus
	err := c.getJSON(ctx, "/v1/cluster", nil, &out)
	return out, err
}

// Convergence returns the cluster's proof of convergence.
func (c *Client) Convergence(ctx context.Context) (api.Convergence, error) {
	var out api.Convergence
	err := c.getJSON(ctx, "/v1/convergence", nil, &out)
	return out, err
}

// Repair runs anti-entropy rounds with every co-replica of the peer now.
func (c *Client) Repair(ctx context.Context) (api.RepairResponse, error) {
	var out api.RepairResponse
	req, err := c.newRequest(ctx, http.MethodPost, "/v1/repair", nil, nil)
	if err != nil {
		return out, err
	}
	resp, err := c.do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// Forget gives up on a failed or departed peer: queries stop saying they
// may miss what it held, and what only it held is lost.
func (c *Client) Forget(ctx context.Context, name string) (api.ForgetResponse, error) {
	var out api.ForgetResponse
	req, err := c.newRequest(ctx, http.MethodPost, "/v1/members/"+url.PathEscape(name)+"/forget", nil, nil)
	if err != nil {
		return out, err
	}
	resp, err := c.do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// Keys lists the cluster's gossip encryption keys.
func (c *Client) Keys(ctx context.Context) (api.KeyStatus, error) {
	var out api.KeyStatus
	return out, c.getJSON(ctx, "/v1/keys", nil, &out)
}

// KeyOp installs, uses or removes a gossip key on every member.
func (c *Client) KeyOp(ctx context.Context, op, key string) (api.KeyStatus, error) {
	var out api.KeyStatus
	body, _ := json.Marshal(api.KeyRequest{Key: key})
	req, err := c.newRequest(ctx, http.MethodPost, "/v1/keys/"+op, nil, bytes.NewReader(body))
	if err != nil {
		return out, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	return out, json.NewDecoder(resp.Body).Decode(&out)
}
