package peer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"strconv"
	"syscall"

	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/syslog"
)

// handlePostLogs stores a batch of NDJSON records (or plain text lines with
// Content-Type text/plain) and answers once the batch is durable. A bad line
// refuses the whole batch with a message naming it; nothing is written.
func (p *Peer) handlePostLogs(w http.ResponseWriter, r *http.Request) {
	body := http.MaxBytesReader(w, r.Body, p.cfg.MaxBodyBytes)
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var in io.Reader = body
	var fingerprint hash.Hash
	if r.Header.Get(HeaderIdempotencyKey) != "" {
		// a retry must carry the same batch: its body is fingerprinted
		// by the parser it goes to: a retry without its Content-Type, or
		// with a charset, is still the same batch
		kind := "application/x-ndjson"
		if mediaType == "text/plain" {
			kind = mediaType
		}
		fingerprint = batchHasher(kind)
		in = io.TeeReader(body, fingerprint)
	}
	var recs []*record.Record
	var err error
	if mediaType == "text/plain" {
		recs, err = p.parseTextLines(in, r.RemoteAddr)
	} else {
		recs, err = p.parseNDJSON(in, r.RemoteAddr)
	}
	if err != nil {
		p.stats.httpRejectedBatch.Add(1)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes; send smaller batches", tooBig.Limit))
			return
		}
		if errors.Is(err, errTooManyRecords) {
			// read the rest (unparsed, up to the body cap) so that the
			// client, still sending, reads this answer instead of a reset
			// connection: a shipper must learn to split its batches
			if _, err := io.Copy(io.Discard, body); err != nil {
				if errors.As(err, &tooBig) {
					writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes; send smaller batches", tooBig.Limit))
				}
				return
			}
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the batch has more than %d records (--max-batch-records); "+
				"nothing of it was stored: send smaller batches", p.cfg.MaxBatchRecords))
			return
		}
		writeError(w, http.StatusBadRequest, err.Error()+"; nothing of this batch was stored")
		return
	}
	level, timeout, err := writeLevel(r, p.cfg.WriteTimeout)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var res index.WriteResult
	opts := ingestOptions{origin: index.OriginLocal}
	local := r.URL.Query().Get("local") == "true"
	if local {
		// an admin write: stored here only, pushed nowhere (drills and tests
		// of anti-entropy)
		opts.origin = index.OriginRemote
	}
	replayed := false
	if key := r.Header.Get(HeaderIdempotencyKey); key != "" {
		if err := checkKey(key); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		end, err := p.idem.begin(r.Context(), key)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "an earlier attempt with this "+HeaderIdempotencyKey+" is still being stored")
			return
		}
		defer end()
		ids, stored, found, err := p.idempotentIDs(key)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		// the rest of the body, if the parser stopped before its end
		// (trailing blank lines), is part of the batch too
		if _, err := io.Copy(io.Discard, in); err != nil {
			writeError(w, http.StatusBadRequest, "read the request body: "+err.Error())
			return
		}
		fp := fingerprint.Sum(nil)
		switch {
		case found && len(ids) != len(recs):
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("%s %q was used for a batch of %d records, this one has %d: use a new key for a new batch",
				HeaderIdempotencyKey, key, len(ids), len(recs)))
			return
		case found && stored != nil && !bytes.Equal(stored, fp):
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("%s %q was used for a batch with other content: use a new key for a new batch",
				HeaderIdempotencyKey, key))
			return
		case found:
			opts.ids, replayed = ids, true
			if !local {
				opts.origin = index.OriginLocalRetry
			}
		default:
			opts.metaName, opts.metaTTL = metaIdempotency+key, p.cfg.IdempotencyTTL
			opts.metaValue = func(ids []record.ID) []byte { return encodeIDs(ids, fp) }
		}
	}
	if err := r.Context().Err(); err != nil {
		// the client gave up while the body was parsed: store nothing, so
		// that its retry does not store the batch twice
		p.log.Debug("HTTP batch not stored: the client went away", "records", len(recs))
		return
	}
	startApplied := p.db.Applied()
	wctx := r.Context()
	if r.Header.Get(HeaderIdempotencyKey) != "" {
		// the key stays held until the write's outcome is known: a client
		// that gives up and retries at once must not find it free while
		// the first attempt is still queued, and store the batch anew
		wctx = context.WithoutCancel(wctx)
	}
	res, err = p.ingestWith(wctx, recs, opts)
	if local && err == nil && p.repl != nil {
		// every other owner lacks it, which is what a debt of this peer's says
		parts := new(view.Mask)
		for _, rec := range recs {
			parts[rec.ID.Partition()] = true
		}
		p.repl.Owe(parts)
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	if err != nil {
		p.log.Error("cannot store HTTP batch", "records", len(recs), "err", err)
		code, msg, retry := ingestFailure(err)
		if retry > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(retry/time.Second)))
		}
		writeError(w, code, msg)
		return
	}
	p.stats.httpAccepted.Add(uint64(len(recs)))
	resp := api.IngestResponse{Accepted: len(recs), W: level}
	code := p.waitReplicas(r.Context(), &resp, recs, res.Seq, startApplied, timeout)
	if r.URL.Query().Get("ids") == "true" {
		resp.IDs = make([]record.ID, len(recs))
		for i, rec := range recs {
			resp.IDs[i] = rec.ID
		}
	}
	writeJSON(w, code, resp)
}

// noSpaceRetryAfter is the Retry-After of a 507: long enough not to hammer
// a full peer, short enough that clients resume soon after space returns
// (the store notices within a second).
const noSpaceRetryAfter = 10 * time.Second

// ingestFailure turns a store error into the answer to a failed batch: its
// status, a message that says whether anything of the batch was stored, and
// a Retry-After (0: none).
func ingestFailure(err error) (code int, msg string, retryAfter time.Duration) {
	switch {
	case errors.Is(err, index.ErrNoSpace):
		// refused before any of it was written
		return http.StatusInsufficientStorage, "this peer's disk is nearly full: nothing of this batch was stored; " +
			"retry later or send it to another peer (" + err.Error() + ")", noSpaceRetryAfter
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return http.StatusInsufficientStorage, "this peer's disk is full: the batch was not acknowledged and part of it " +
			"may be stored (a retry stores them twice unless it carries the same Idempotency-Key): " + err.Error(), noSpaceRetryAfter
	case errors.Is(err, index.ErrClosed):
		return http.StatusServiceUnavailable, "this peer is shutting down: the batch was not acknowledged and part of " +
			"it may be stored (a retry stores them twice unless it carries the same Idempotency-Key)", time.Second
	default:
		return http.StatusServiceUnavailable, "cannot store the batch: it was not acknowledged and part of it may be " +
			"stored (a retry stores them twice unless it carries the same Idempotency-Key): " + err.Error(), 0
	}
}

// writeLevel reads the w (1, quorum, all) and timeout parameters.
func writeLevel(r *http.Request, def time.Duration) (string, time.Duration, error) {
	q := r.URL.Query()
	level := q.Get("w")
	switch level {
	case "", "1":
		level = "1"
	case "quorum", "all":
	default:
		return "", 0, fmt.Errorf("w=%q: want 1, quorum or all", level)
	}
	timeout := def
	if s := q.Get("timeout"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > 10*time.Minute {
			return "", 0, fmt.Errorf("timeout=%q: want a duration such as 5s (at most 10m)", s)
		}
		timeout = d
	}
	return level, timeout, nil
}

// waitReplicas fills the replica counts of a stored batch and, for w=quorum
// or w=all, waits until enough owners hold it or the timeout passes. It
// returns the HTTP status: 200 when w is met, 504 when it is not (the batch
// is stored here and replication goes on).
func (p *Peer) waitReplicas(ctx context.Context, resp *api.IngestResponse, recs []*record.Record, seq, startApplied uint64, timeout time.Duration) int {
	ids := make([]record.ID, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		var progress <-chan struct{}
		var have, owners []int
		var missing []string
		if p.repl != nil {
			progress = p.repl.Progress()
			_, have, owners, missing = p.repl.Copies(ids, seq, startApplied)
		} else {
			have, owners = []int{1}, []int{1}
		}
		fewest, required, met := -1, 0, true
		for i, n := range owners {
			want := 1
			switch resp.W {
			case "quorum":
				want = n/2 + 1
			case "all":
				want = n
			}
			required = max(required, want)
			if resp.W != "1" && have[i] < want {
				met = false
			}
			if fewest < 0 || have[i] < fewest {
				fewest = have[i]
			}
		}
		fewest = max(fewest, 0)
		resp.Replicas, resp.Required, resp.Unreached = fewest, required, missing
		if met {
			return http.StatusOK
		}
		select {
		case <-progress:
		case <-timer.C:
			return http.StatusGatewayTimeout
		case <-ctx.Done():
			return http.StatusGatewayTimeout
		}
	}
}

// eachLine calls fn for every non-empty line (without its line ending),
// numbering lines from 1. A line longer than max is an error naming it.
func eachLine(r io.Reader, max int, fn func(n int, line []byte) error) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var total int64
	var long []byte
	for n := 1; ; n++ {
		chunk, err := br.ReadSlice('\n')
		total += int64(len(chunk))
		line := chunk
		for errors.Is(err, bufio.ErrBufferFull) { // a line longer than the buffer
			long = append(long[:0], chunk...)
			for errors.Is(err, bufio.ErrBufferFull) {
				if len(long) > max {
					return total, fmt.Errorf("line %d is longer than %d bytes", n, max)
				}
				chunk, err = br.ReadSlice('\n')
				total += int64(len(chunk))
				long = append(long, chunk...)
			}
			line = long
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return total, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > max {
			return total, fmt.Errorf("line %d is longer than %d bytes", n, max)
		}
		if len(bytes.TrimSpace(line)) > 0 {
			if ferr := fn(n, line); ferr != nil {
				return total, ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
	}
}

// errTooManyRecords: a batch past Config.MaxBatchRecords.
var errTooManyRecords = errors.New("too many records in one batch")

func (p *Peer) parseNDJSON(body io.Reader, source string) ([]*record.Record, error) {
	var recs []*record.Record
	n, err := eachLine(body, p.cfg.MaxLineBytes, func(n int, line []byte) error {
		if len(recs) >= p.cfg.MaxBatchRecords {
			return errTooManyRecords
		}
		r := &record.Record{}
		if err := record.ParseJSON(line, r); err != nil {
			p.stats.httpRejectedLines.Add(1)
			return fmt.Errorf("line %d: %v", n, err)
		}
		r.Transport, r.Source = record.TransportHTTP, source
		recs = append(recs, r)
		return nil
	})
	p.stats.httpBytes.Add(uint64(n))
	return recs, err
}

// parseTextLines treats each line as a syslog message (RFC 5424, RFC 3164 or
// neither, kept raw and flagged), like a line arriving over TCP.
func (p *Peer) parseTextLines(body io.Reader, source string) ([]*record.Record, error) {
	var recs []*record.Record
	parser := &syslog.Parser{Location: p.cfg.Syslog.Location}
	now := p.cfg.Now()
	n, err := eachLine(body, p.cfg.MaxLineBytes, func(n int, line []byte) error {
		if len(recs) >= p.cfg.MaxBatchRecords {
			return errTooManyRecords
		}
		r := &record.Record{}
		parser.Parse(line, now, r)
		r.Transport, r.Source = record.TransportHTTP, source
		if r.Malformed() {
			p.stats.httpMalformedLines.Add(1)
		}
		recs = append(recs, r)
		return nil
	})
	p.stats.httpBytes.Add(uint64(n))
	return recs, err
}
