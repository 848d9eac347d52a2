package peer

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/logmesh/logmesh/api"
)

// metrics is a peer's Prometheus registry: its own (not the global one, so
// that several peers in one process each export their own figures). Most
// figures are read from Status at scrape time, so /metrics and /v1/status
// never disagree.
type metrics struct {
	reg     *prometheus.Registry
	query   *prometheus.HistogramVec
	refusal *prometheus.CounterVec
}

func newMetrics(p *Peer) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.query = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "logmesh_query_duration_seconds",
		Help:    "Time to answer GET /v1/logs, by scope (cluster: fanned out; local: this peer's store).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	}, []string{"scope"})
	m.refusal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "logmesh_api_refused_total",
		Help: "API calls refused, by reason (no_token, bad_token, expired_token, scope, not_a_peer).",
	}, []string{"reason"})
	m.reg.MustRegister(m.query, m.refusal, statusCollector{p},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// observeQuery records the duration of one query.
func (m *metrics) observeQuery(local bool, d time.Duration) {
	scope := "cluster"
	if local {
		scope = "local"
	}
	m.query.WithLabelValues(scope).Observe(d.Seconds())
}

// refused counts one refused API call.
func (m *metrics) refused(reason string) { m.refusal.WithLabelValues(reason).Inc() }

type statusCollector struct{ p *Peer }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	mIngestRecords   = desc("logmesh_ingest_records_total", "Records accepted, by transport.", "transport")
	mIngestBytes     = desc("logmesh_ingest_bytes_total", "Raw bytes of accepted records, by transport.", "transport")
	mIngestMalformed = desc("logmesh_ingest_malformed_total", "Syslog messages kept raw and flagged, by transport and reason; HTTP lines flagged malformed.", "transport", "reason")
	mIngestRejected  = desc("logmesh_ingest_rejected_total", "Input refused: HTTP batches and lines (bad input), syslog connections over the cap.", "transport", "what")
	mIngestDropped   = desc("logmesh_ingest_dropped_total", "Syslog records lost after receipt (store failure, or a full UDP queue).", "transport")
	mIngestTrunc     = desc("logmesh_ingest_truncated_total", "Syslog messages cut to --max-message-bytes.", "transport")
	mConnsOpen       = desc("logmesh_syslog_connections_open", "Syslog TCP connections open now.")
	mConnsAccepted   = desc("logmesh_syslog_connections_accepted_total", "Syslog TCP connections served.")
	mLargeBuffers    = desc("logmesh_syslog_large_read_buffers", "Syslog TCP connections holding a large (256 KiB) read buffer now: senders with (or lately with) a backlog, at most 64.")

	mSyslogRefused   = desc("logmesh_syslog_refused_total", "Syslog input refused before it was read: connections closed at accept and UDP datagrams dropped (reason not_allowed: source outside --syslog-allow).", "transport", "reason")
	mSyslogClosed    = desc("logmesh_syslog_connections_closed_total", "Syslog TCP and TLS connections closed by the server, by reason (idle_timeout, frame_timeout, framing_error).", "transport", "reason")
	mTLSConnsOpen    = desc("logmesh_syslog_tls_connections_open", "Syslog TLS connections open now (handshaking or sending).")
	mTLSConnsAcc     = desc("logmesh_syslog_tls_connections_accepted_total", "Syslog TLS connections whose handshake began.")
	mTLSHandshakeErr = desc("logmesh_syslog_tls_handshake_failures_total", "Syslog TLS handshakes that failed, by reason (timeout, not_tls, no_client_cert, bad_client_cert, closed, protocol).", "reason")
	mTLSLineFrames   = desc("logmesh_syslog_tls_line_frames_total", "Syslog TLS messages that arrived newline-framed, not octet-counted as RFC 5425 requires; stored flagged.")

	mRecords      = desc("logmesh_store_records", "Records in this peer's store.")
	mDiskBytes    = desc("logmesh_store_disk_bytes", "Bytes of the store on disk.")
	mLSMBytes     = desc("logmesh_store_lsm_bytes", "Bytes of the store's LSM tree.")
	mVlogBytes    = desc("logmesh_store_value_log_bytes", "Bytes of the store's value log.")
	mCommits      = desc("logmesh_store_commits_total", "Group commits.")
	mCommitErrors = desc("logmesh_store_commit_errors_total", "Group commits that failed.")
	mCommitSecs   = desc("logmesh_store_commit_seconds_total", "Time spent in group commits.")
	mWritten      = desc("logmesh_store_records_written_total", "Records written (new or not).")
	mDropped      = desc("logmesh_store_windows_dropped_total", "Time windows dropped by retention.")
	mWritable     = desc("logmesh_store_writable", "1 while the store accepts writes, 0 while its disk is nearly full and it refuses them.")
	mFreeDisk     = desc("logmesh_store_free_disk_bytes", "Free bytes on the store's filesystem, as last measured.")
	mRefused      = desc("logmesh_store_writes_refused_total", "Writes refused because the store's disk was nearly full.")

	mUndeliveredBytes = desc("logmesh_replication_undelivered_bytes", "Bytes waiting to be pushed, by target peer.", "peer")
	mUndeliveredRecs  = desc("logmesh_replication_undelivered_records", "Records waiting to be pushed, by target peer.", "peer")
	mDelivered        = desc("logmesh_replication_delivered_records_total", "Records pushed and made durable, by target peer.", "peer")
	mLag              = desc("logmesh_replication_lag_seconds", "Receipt to durable on the target, recent quantiles, by target peer.", "peer", "quantile")
	mReplIn           = desc("logmesh_replication_received_records_total", "Records other peers pushed here.")
	mReplDup          = desc("logmesh_replication_duplicate_records_total", "Pushed records this peer already had.")
	mSkips            = desc("logmesh_replication_skips_total", "Backlogs dropped for --max-hints-bytes (anti-entropy repairs them).")
	mHintsDeleted     = desc("logmesh_replication_hints_deleted_total", "Records held for other peers, deleted once delivered.")
	mRetired          = desc("logmesh_replication_retired_pending", "Copies handed on (delivered hints, handed-over records) waiting out --retire-after before they are deleted.")

	mVlogGC      = desc("logmesh_store_value_log_gc_runs_total", "Value-log files rewritten by garbage collection.")
	mPageOuts    = desc("logmesh_store_page_outs_total", "Times the store's mapped tables were paged out for exceeding --max-mapped-memory.")
	mBlocks      = desc("logmesh_store_blocks_written_total", "Blocks the sealer wrote (records of ended windows, compressed together).")
	mSealed      = desc("logmesh_store_records_sealed_total", "Records the sealer moved into blocks.")
	mSettled     = desc("logmesh_store_deletes_settled_total", "Tombstones written at the versions of deleted values, so that no value-log collection brings them back.")
	mMoved       = desc("logmesh_store_slices_moved_total", "Minute slices the sealer switched to their blocks (their loose records then dropped whole).")
	mExpiredBlk  = desc("logmesh_store_expired_blocks_deleted_total", "Blocks (and late records among them) retention deleted one by one, so that value-log collections can reclaim the files of those in the value log.")
	mMovedDrop   = desc("logmesh_store_moved_slices_dropped_total", "Moved slices whose loose records were dropped.")
	mDrops       = desc("logmesh_store_drops_total", "Bulk drops of the store (retention, loose records of moved slices); each holds every write while it runs.")
	mDropSecs    = desc("logmesh_store_drop_seconds_total", "Time the store's bulk drops held the writes.")
	mUnsealed    = desc("logmesh_store_blocks_unsealed_total", "Blocks turned back into loose records by a late record or a delete inside them.")
	mMerged      = desc("logmesh_store_blocks_merged_total", "Blocks of moved slices a switch re-encoded with the late records and deletes of their range.")
	mCaptured    = desc("logmesh_store_captured_bytes", "Records the sealer keeps in memory to move slices without reading them back (--seal-capture).")
	mRunsMoved   = desc("logmesh_store_moved_runs_total", "Partition runs of slices the sealer moved, by where it took their records from.", "from")
	mSkipped     = desc("logmesh_store_blocks_skipped_total", "Blocks that word queries passed over unread because their word filter ruled the word out.")
	mLevelTables = desc("logmesh_store_level_tables", "Tables in each level of the store's LSM tree (level 0 growing: compaction falls behind).", "level")
	mLevelBytes  = desc("logmesh_store_level_bytes", "Bytes in each level of the store's LSM tree.", "level")
	mLevelScore  = desc("logmesh_store_level_compaction_score", "Compaction score of each level (above 1: waiting for compaction).", "level")

	mAERounds   = desc("logmesh_antientropy_rounds_total", "Anti-entropy rounds.")
	mAEErrors   = desc("logmesh_antientropy_round_errors_total", "Anti-entropy rounds that failed.")
	mAESecs     = desc("logmesh_antientropy_round_seconds_total", "Time spent in anti-entropy rounds.")
	mAELeaves   = desc("logmesh_antientropy_differing_leaves_total", "Merkle leaves found different.")
	mAERecords  = desc("logmesh_antientropy_repaired_records_total", "Records sent or received to repair a replica.", "direction")
	mAEBytes    = desc("logmesh_antientropy_repaired_bytes_total", "Bytes sent or received by anti-entropy.", "direction")
	mMembers    = desc("logmesh_gossip_members", "Members this peer knows, by state.", "state")
	mFlaps      = desc("logmesh_gossip_flaps_total", "Members seen going from alive to suspect or failed and back.")
	mGossipDrop = desc("logmesh_gossip_events_dropped_total", "Membership events dropped by slow subscribers.")

	mDebt           = desc("logmesh_replication_debt_partitions", "Partitions a target peer may lack records of that this peer held before it tracked it (settled by anti-entropy), by target peer.", "peer")
	mReplRefused    = desc("logmesh_replication_refused_records_total", "Pushed records a target refused (expired in its window): no copy there, by target peer.", "peer")
	mDelivThrough   = desc("logmesh_replication_delivered_through_timestamp_seconds", "Every record this peer received before this time is on every owner (0 while a debt is outstanding).")
	mPartitions     = desc("logmesh_partitions", "Partitions this peer owns, holds complete, or holds as a witness until handed over.", "state")
	mClockSkew      = desc("logmesh_clock_skew_seconds", "This peer's clock minus the cluster's (the median of the clocks compared).")
	mClockSkewed    = desc("logmesh_clock_skewed", "1 while this peer's clock is beyond --max-clock-skew from the cluster's.")
	mClockOffset    = desc("logmesh_clock_offset_seconds", "Another peer's clock minus this one's, by peer.", "peer")
	mPartialAnswer  = desc("logmesh_query_partial_answers_total", "Cluster queries answered with partial coverage.")
	mIDRetags       = desc("logmesh_id_retags_total", "New ID instance tags taken (the clock stepped back, or another peer drew the same tag).")
	mAPIConns       = desc("logmesh_api_connections", "Open API connections.")
	mAPIRefused     = desc("logmesh_api_connections_refused_total", "API connections closed at once: their host was at --api-max-conns-per-host.")
	mQueriesRefused = desc("logmesh_queries_refused_total", "Queries refused with 429 at --max-queries or --max-queries-per-client.")
	mQueriesRunning = desc("logmesh_queries_running", "Client queries running now (members' fan-out parts not counted).")
	mQueryTimeouts  = desc("logmesh_query_timeouts_total", "Queries ended at --query-timeout (their answers said so).")
	mAPIReclaimed   = desc("logmesh_api_connections_reclaimed_total", "Idle keep-alive API connections closed to let a new one in at a connection cap.")
)

func (statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mIngestRecords, mIngestBytes, mIngestMalformed, mIngestRejected, mIngestDropped,
		mIngestTrunc, mConnsOpen, mConnsAccepted, mLargeBuffers, mSyslogRefused, mSyslogClosed, mTLSConnsOpen, mTLSConnsAcc,
		mTLSHandshakeErr, mTLSLineFrames, mRecords, mDiskBytes, mLSMBytes, mVlogBytes, mCommits, mCommitErrors,
		mCommitSecs, mWritten, mDropped, mWritable, mFreeDisk, mRefused, mUndeliveredBytes, mUndeliveredRecs, mDelivered, mLag, mReplIn, mReplDup, mSkips,
		mHintsDeleted, mRetired, mVlogGC, mPageOuts, mBlocks, mSealed, mSettled, mMoved, mMovedDrop, mDrops, mDropSecs, mUnsealed, mMerged, mCaptured, mRunsMoved, mSkipped, mLevelTables, mLevelBytes, mLevelScore, mAERounds, mAEErrors, mAESecs, mAELeaves, mAERecords, mAEBytes, mMembers, mFlaps, mGossipDrop,
		mDebt, mReplRefused, mDelivThrough, mPartitions, mClockSkew, mClockSkewed, mClockOffset, mPartialAnswer, mIDRetags, mAPIConns, mAPIRefused, mAPIReclaimed, mQueriesRefused, mQueriesRunning, mQueryTimeouts} {
		ch <- d
	}
}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.p.Status()
	counter := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	h := s.Ingest.HTTP
	counter(mIngestRecords, float64(h.Accepted), "http")
	counter(mIngestBytes, float64(h.Bytes), "http")
	counter(mIngestMalformed, float64(h.MalformedLines), "http", "malformed")
	counter(mIngestRejected, float64(h.RejectedBatches), "http", "batches")
	counter(mIngestRejected, float64(h.RejectedLines), "http", "lines")
	if sl := s.Ingest.Syslog; sl != nil {
		for _, t := range []struct {
			transport string
			s         api.SyslogTransport
		}{{"tcp", sl.TCP}, {"udp", sl.UDP}, {"tls", sl.TLS}} {
			counter(mIngestRecords, float64(t.s.Messages), t.transport)
			counter(mIngestBytes, float64(t.s.Bytes), t.transport)
			counter(mIngestDropped, float64(t.s.Dropped), t.transport)
			counter(mIngestTrunc, float64(t.s.Truncated), t.transport)
			reasons := make([]string, 0, len(t.s.Malformed))
			for r := range t.s.Malformed {
				reasons = append(reasons, r)
			}
			slices.Sort(reasons)
			for _, r := range reasons {
				counter(mIngestMalformed, float64(t.s.Malformed[r]), t.transport, r)
			}
		}
		counter(mIngestRejected, float64(sl.TCP.ConnectionsRejected), "tcp", "connections")
		gauge(mConnsOpen, float64(sl.TCP.ConnectionsOpen))
		counter(mConnsAccepted, float64(sl.TCP.ConnectionsAccepted))
		gauge(mLargeBuffers, float64(sl.LargeReadBuffers))
		syslogMetrics(sl, counter, gauge)
	}

	gauge(mRecords, float64(s.Records))
	gauge(mDiskBytes, float64(s.DiskBytes))
	gauge(mLSMBytes, float64(s.Store.LSMBytes))
	gauge(mVlogBytes, float64(s.Store.ValueLogBytes))
	counter(mCommits, float64(s.Store.Commits))
	counter(mCommitErrors, float64(s.Store.CommitErrors))
	counter(mCommitSecs, s.Store.CommitSeconds)
	counter(mWritten, float64(s.Store.RecordsWritten))
	counter(mDropped, float64(s.Store.WindowsDropped))
	counter(mVlogGC, float64(s.Store.ValueLogGCRuns))
	counter(mPageOuts, float64(s.Store.PageOuts))
	counter(mBlocks, float64(s.Store.BlocksWritten))
	counter(mSealed, float64(s.Store.RecordsSealed))
	counter(mSettled, float64(s.Store.DeletesSettled))
	counter(mMoved, float64(s.Store.SlicesMoved))
	counter(mMovedDrop, float64(s.Store.SlicesDropped))
	counter(mDrops, float64(s.Store.Drops))
	counter(mDropSecs, s.Store.DropSeconds)
	counter(mExpiredBlk, float64(s.Store.ExpiredBlocksDeleted))
	counter(mUnsealed, float64(s.Store.BlocksUnsealed))
	counter(mMerged, float64(s.Store.BlocksMerged))
	counter(mSkipped, float64(s.Store.BlocksSkipped))
	gauge(mCaptured, float64(s.Store.CapturedBytes))
	counter(mRunsMoved, float64(s.Store.RunsFromMemory), "memory")
	counter(mRunsMoved, float64(s.Store.RunsReadBack), "store")
	if c.p.db != nil {
		for _, l := range c.p.db.Levels() {
			lv := strconv.Itoa(l.Level)
			gauge(mLevelTables, float64(l.Tables), lv)
			gauge(mLevelBytes, float64(l.Bytes), lv)
			gauge(mLevelScore, l.Score, lv)
		}
	}
	writable := 0.0
	if s.Store.Writable {
		writable = 1
	}
	gauge(mWritable, writable)
	gauge(mFreeDisk, float64(s.Store.FreeDiskBytes))
	counter(mRefused, float64(s.Store.WritesRefused))

	for _, t := range s.Replication {
		gauge(mUndeliveredBytes, float64(t.UndeliveredBytes), t.Peer)
		gauge(mUndeliveredRecs, float64(t.UndeliveredCount), t.Peer)
		counter(mDelivered, float64(t.Delivered), t.Peer)
		gauge(mLag, t.LagP50Seconds, t.Peer, "0.5")
		gauge(mLag, t.LagP99Seconds, t.Peer, "0.99")
		gauge(mDebt, float64(t.DebtPartitions), t.Peer)
		counter(mReplRefused, float64(t.Refused), t.Peer)
	}
	if s.Replication != nil || s.Partitions != nil {
		dt := 0.0
		if !s.DeliveredThrough.IsZero() {
			dt = float64(s.DeliveredThrough.UnixMilli()) / 1e3
		}
		gauge(mDelivThrough, dt)
	}
	if ps := s.Partitions; ps != nil {
		gauge(mPartitions, float64(ps.Owned), "owned")
		gauge(mPartitions, float64(ps.Complete), "complete")
		gauge(mPartitions, float64(ps.Witness), "witness")
	}
	if cs := s.Clock; cs != nil {
		gauge(mClockSkew, cs.SkewSeconds)
		skewed := 0.0
		if cs.Skewed {
			skewed = 1
		}
		gauge(mClockSkewed, skewed)
		for _, pc := range cs.Peers {
			gauge(mClockOffset, pc.OffsetSeconds, pc.Peer)
		}
		counter(mPartialAnswer, float64(s.PartialAnswers))
		counter(mIDRetags, float64(s.IDRetags))
	}
	gauge(mAPIConns, float64(s.APIConnections))
	counter(mAPIRefused, float64(s.APIConnectionsRefused))
	counter(mAPIReclaimed, float64(s.APIConnectionsReclaimed))
	counter(mQueriesRefused, float64(s.QueriesRefused))
	counter(mQueryTimeouts, float64(s.QueryTimeouts))
	gauge(mQueriesRunning, float64(s.QueriesRunning))
	counter(mReplIn, float64(s.ReplicatedIn))
	counter(mReplDup, float64(s.ReplicatedDuplicates))
	counter(mSkips, float64(s.Skips))
	counter(mHintsDeleted, float64(s.HintsDeleted))
	gauge(mRetired, float64(s.Retired))

	if ae := s.AntiEntropy; ae != nil {
		counter(mAERounds, float64(ae.Rounds))
		counter(mAEErrors, float64(ae.RoundErrors))
		counter(mAESecs, ae.RoundSeconds)
		counter(mAELeaves, float64(ae.DifferingLeaves))
		counter(mAERecords, float64(ae.RecordsSent), "sent")
		counter(mAERecords, float64(ae.RecordsReceived), "received")
		counter(mAEBytes, float64(ae.BytesSent), "sent")
		counter(mAEBytes, float64(ae.BytesReceived), "received")
	}
	for _, st := range []string{"alive", "suspect", "failed", "left"} {
		gauge(mMembers, float64(s.Members[st]), st)
	}
	if g := c.p.cluster.g; g != nil {
		counter(mFlaps, float64(g.Flaps()))
		counter(mGossipDrop, float64(g.Dropped()))
	}
}

// syslogMetrics exports the syslog counters of refusals, closes and TLS.
func syslogMetrics(sl *api.SyslogStats, counter, gauge func(*prometheus.Desc, float64, ...string)) {
	for _, t := range []struct {
		transport string
		s         api.SyslogTransport
	}{{"tcp", sl.TCP}, {"udp", sl.UDP}, {"tls", sl.TLS}} {
		counter(mSyslogRefused, float64(t.s.NotAllowed), t.transport, "not_allowed")
		if t.transport == "udp" {
			continue
		}
		counter(mSyslogClosed, float64(t.s.IdleTimeouts), t.transport, "idle_timeout")
		counter(mSyslogClosed, float64(t.s.FrameTimeouts), t.transport, "frame_timeout")
		counter(mSyslogClosed, float64(t.s.FramingErrors), t.transport, "framing_error")
	}
	counter(mIngestRejected, float64(sl.TLS.ConnectionsRejected), "tls", "connections")
	gauge(mTLSConnsOpen, float64(sl.TLS.ConnectionsOpen))
	counter(mTLSConnsAcc, float64(sl.TLS.ConnectionsAccepted))
	for _, r := range []string{"timeout", "not_tls", "no_client_cert", "bad_client_cert", "closed", "protocol"} {
		counter(mTLSHandshakeErr, float64(sl.TLS.HandshakeFailures[r]), r)
	}
	counter(mTLSLineFrames, float64(sl.TLS.LineFrames))
}
