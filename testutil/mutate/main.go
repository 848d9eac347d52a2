// Command mutate checks that the safety tests catch the bugs they guard
// against: for each mutation it copies the module, breaks one piece of code
// the way a real bug would, runs the tests that must kill it, and fails
// unless they fail. docs/testing.md lists the mutations; `make mutations`
// runs them (one at a time: each takes a minute or two).
//
//	go run ./testutil/mutate [-only NAME]
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// mutation breaks one file and names the tests that must then fail.
type mutation struct {
	name, file, from, to string
	pkg, run             string
	env                  []string
}

var mutations = []mutation{
	{
		name: "push-acknowledges-without-storing",
		file: "peer/replicate/push.go",
		from: "	if n := r.cfg.dropPushEvery; n > 0 && r.pushesIn.Add(1)%uint64(n) == 0 {",
		to:   "	if true {",
		pkg:  "./peer", run: "TestPushAloneReachesEveryReplica",
	},
	{
		name: "anti-entropy-pull-never-pulls",
		file: "antientropy/syncer.go",
		from: "	res, differ, err := s.round(ctx, tr, peer, parts, pull, false)",
		to:   "	pull = false\n	res, differ, err := s.round(ctx, tr, peer, parts, pull, false)",
		pkg:  "./peer", run: "TestWipedPeerRefillsBeforeItCounts",
	},
	{
		name: "fill-proof-against-any-co-owner",
		file: "peer/repair/repair.go",
		from: "		if pr.Vouched[i] {",
		to:   "		if pr.Vouched[i] || v.Owns(pr.Peer, p) {",
		pkg:  "./peer", run: "TestNewOwnersDoNotVouchForEachOther",
	},
	{
		name: "retention-on-the-local-clock-alone",
		file: "peer/peer.go",
		from: "	if p.cfg.GossipAddr == \"\" {\n		return p.cfg.Now(), true\n	}\n	r := p.repairReady.Load()",
		to:   "	if true {\n		return p.cfg.Now(), true\n	}\n	r := p.repairReady.Load()",
		pkg:  "./peer", run: "TestClockAheadKeepsWhatTheClusterKeeps",
	},
	{
		name: "hand-over-without-confirmation",
		file: "peer/repair/handover.go",
		from: "			missing, err := r.confirm(ctx, o, pt, ids, witness[p], false)",
		to:   "			missing, err := 0, error(nil)\n			_ = witness",
		pkg:  "./peer", run: "TestHandOverKeepsWhatNoOwnerHolds",
	},
	{
		name: "skipped-backlog-owes-nothing",
		file: "peer/replicate/replicate.go",
		from: "	t.addDebt((*view.Mask)(&parts), head, r.cfg.Now())",
		to:   "	_ = parts",
		pkg:  "./peer", run: "TestBacklogOverflowThenLeaveLosesNothing",
	},
	{
		name: "unread-peer-ignored",
		file: "peer/fanout/fanout.go",
		from: "		if v.Unique(name, until) {",
		to:   "		if false {",
		pkg:  "./peer", run: "TestOneWayAPICutMakesAnswersPartial",
	},
	{
		name: "leave-without-hand-over",
		file: "peer/repair/handover.go",
		from: "	v := r.cfg.View()\n	complete, witness := r.Claims()\n	for p := 0; p < record.NumPartitions && ctx.Err() == nil; p++ {",
		to:   "	v := r.cfg.View()\n	complete, witness := r.Claims()\n	for p := record.NumPartitions; p < record.NumPartitions && ctx.Err() == nil; p++ {",
		pkg:  "./peer", run: "TestLeaveWithOneReplicaHandsItsPartitionsOver",
	},
	{
		name: "removal-of-a-record-in-flight",
		file: "index/commit.go",
		from: "		p.mu.Unlock()\n		if busy {\n			continue\n		}\n		if b.db.idMayBeInBlock(id) {\n			// in a block",
		to:   "		p.mu.Unlock()\n		_ = busy\n		if b.db.idMayBeInBlock(id) {\n			// in a block",
		pkg:  "./index", run: "TestConcurrentDeletesOfTheSameRecordsKeepDigestsWhole",
	},
	{
		name: "delete-despite-a-leaving-owner",
		file: "peer/leaving/leaving.go",
		from: "	return del(g.leavingLocked)",
		to:   "	return del(func(string) bool { return false })",
		pkg:  "./peer", run: "TestHandOverToALeavingOwnerKeepsTheCopy",
	},
	{
		name: "leaving-co-owner-counted-as-staying",
		file: "peer/repair/handover.go",
		from: "			if err == nil {\n				kept = true",
		to:   "			if err == nil || link.IsLeaving(err) {\n				kept = true",
		pkg:  "./peer", run: "TestTwoOwnersLeavingAtOnceKeepEveryRecord",
	},
	{
		name: "leaving-peer-takes-pushes",
		file: "peer/api.go",
		from: "		if p.leaving.Load() {\n			writeError(w, link.StatusLeaving, \"this peer is leaving the cluster\")",
		to:   "		if false {\n			writeError(w, link.StatusLeaving, \"this peer is leaving the cluster\")",
		pkg:  "./peer", run: "TestALeavingPeerTakesNoPushes",
	},
	{
		name: "no-idle-deadlines",
		file: "peer/api.go",
		from: "idleDeadlines(p.cfg.APIIdleTimeout, ",
		to:   "idleDeadlines(0, ",
		pkg:  "./peer", run: "TestAStalledReaderIsCutOff",
	},
	{
		name: "no-per-host-connection-cap",
		file: "peer/limits.go",
		from: "netlimit.Wrap(ln, total, perHost)",
		to:   "netlimit.Wrap(ln, total, 0*perHost)",
		pkg:  "./peer", run: "TestAPIKeepsServingThroughAConnectionFlood",
	},
	{
		name: "idle-keepalives-hold-their-place",
		file: "peer/api.go",
		from: "p.apiLimit.SetIdle(c.RemoteAddr(), s == http.StateIdle)",
		to:   "p.apiLimit.SetIdle(c.RemoteAddr(), false && s == http.StateIdle)",
		pkg:  "./peer", run: "TestIdleKeepAlivesDoNotLockAHostOut",
	},
	{
		name: "leaving-mark-outlives-a-return",
		file: "peer/cluster.go",
		from: "	if c.p.departing.Clear(e.Member.Name) {",
		to:   "	if false && c.p.departing.Clear(e.Member.Name) {",
		pkg:  "./peer", run: "TestAPeerBackAfterLeavingCountsAgain",
	},
	{
		name: "plaintext-gossip-off-loopback",
		file: "gossip/gossip.go",
		from: "if kr == nil && !g.cfg.Insecure {",
		to:   "if false && kr == nil && !g.cfg.Insecure {",
		pkg:  "./gossip", run: "TestPlaintextGossipOffLoopbackNeedsConsent",
	},
	{
		name: "gossip-takes-unencrypted-packets",
		file: "gossip/gossip.go",
		from: "ml.GossipVerifyIncoming, ml.GossipVerifyOutgoing = true, true",
		to:   "ml.GossipVerifyIncoming, ml.GossipVerifyOutgoing = false, true",
		pkg:  "./peer", run: "TestRogueAgentsGetNothing",
	},
	{
		name: "internal-takes-unsigned-calls",
		file: "peer/querylimit.go",
		from: "return link.Verify(r, keys)",
		to:   "return true || link.Verify(r, keys)",
		pkg:  "./peer", run: "TestInternalCallsNeedTheClusterKey",
	},
	{
		name: "client-certificate-passes-as-peer",
		file: "tlsutil/tlsutil.go",
		from: "if leaf := cs.VerifiedChains[0][0]; IsPeer(leaf) {",
		to:   "if leaf := cs.VerifiedChains[0][0]; true || IsPeer(leaf) {",
		pkg:  "./peer", run: "TestMutualTLSClusterReplicatesAndRefusesWhoeverDoesNotBelong",
	},
	{
		name: "batch-record-cap-ignored",
		file: "peer/api_ingest.go",
		from: "		if len(recs) >= p.cfg.MaxBatchRecords {\n			return errTooManyRecords\n		}\n		r := &record.Record{}\n		if err",
		to:   "		if false && len(recs) >= p.cfg.MaxBatchRecords {\n			return errTooManyRecords\n		}\n		r := &record.Record{}\n		if err",
		pkg:  "./peer", run: "TestABatchPastTheRecordCapIsRefusedWhole",
	},
	{
		name: "committer-retains-answered-writes",
		file: "index/commit.go",
		from: "waiting = slices.Delete(waiting, 0, n)",
		to:   "waiting = waiting[n:]; _ = slices.Delete[[]int]",
		pkg:  "./index", run: "TestAnsweredWritesAreNotRetained",
	},
	{
		name: "no-query-caps",
		file: "peer/api_query.go",
		from: "	if !isMemberCall(r) {",
		to:   "	if false && !isMemberCall(r) {",
		pkg:  "./peer", run: "TestQueriesPastTheCapsAreRefused",
	},
	{
		name: "no-query-timeout",
		file: "peer/api_query.go",
		from: "	if p.cfg.QueryTimeout > 0 {",
		to:   "	if false && p.cfg.QueryTimeout > 0 {",
		pkg:  "./peer", run: "TestAQueryPastItsTimeoutEndsPartial",
	},
	{
		name: "future-ids-accepted",
		file: "index/commit.go",
		from: "if req.origin != OriginLocal && e.ID.Millis() > b.futureLimit() {",
		to:   "if false && req.origin != OriginLocal && e.ID.Millis() > b.futureLimit() {",
		pkg:  "./peer", run: "TestAForgedFarFutureIDIsRefused",
	},
	{
		name: "open-on-a-full-disk",
		file: "index/db.go",
		from: "err == nil && free < minFree {",
		to:   "err == nil && false && free < minFree {",
		pkg:  "./index", run: "TestOpenOnAFullDiskRefuses",
	},
	{
		name: "start-without-waiting-for-space",
		file: "peer/diskwait.go",
		from: "	if cause == nil || !errors.Is(cause, index.ErrNoSpace) {",
		to:   "	if cause == nil || errors.Is(cause, index.ErrNoSpace) {",
		pkg:  "./peer", run: "TestAPeerWaitingForDiskSpaceSaysSo",
	},
	{
		name: "query-outlives-its-client",
		file: "peer/api_query.go",
		from: "		ctx, cancel := context.WithTimeoutCause(r.Context(), p.cfg.QueryTimeout, errQueryTimeout)",
		to:   "		ctx, cancel := context.WithTimeoutCause(context.WithoutCancel(r.Context()), p.cfg.QueryTimeout, errQueryTimeout)",
		pkg:  "./peer", run: "TestReviewAbusesOnRealProcesses",
	},
	{
		name: "count-says-full",
		file: "peer/api_query.go",
		from: "		res.Coverage = \"full\"\n		if !a.Coverage.Full() {",
		to:   "		res.Coverage = \"full\"\n		if false {",
		pkg:  "./peer", run: "TestQueryWithoutALiveOwnerSaysItIsPartial",
	},
	{
		name: "restarted-peer-alone-trusts-itself",
		file: "peer/peer.go",
		from: "		if p.repair.Clustered() && !p.cluster.view().OtherAlive() {",
		to:   "		if false {",
		pkg:  "./peer", run: "TestARestartedPeerAloneDoesNotAnswerFull",
	},
	{
		name: "syslog-connections-past-the-descriptor-share",
		file: "peer/peer.go",
		from: "		if q := descriptorQuarter(); q > 0 && sc.MaxConnections > q {",
		to:   "		if q := descriptorQuarter(); false && q > 0 && sc.MaxConnections > q {",
		pkg:  "./peer", run: "TestDescriptorFloodOnALowLimit",
	},
	{
		name: "plain-syslog-hostname-past-255",
		file: "syslog/rfc5424.go",
		from: "range [numHeaderFields]int{fHostname: 255,",
		to:   "range [numHeaderFields]int{fHostname: 256,",
		pkg:  "./syslog", run: "FuzzParsePlain",
	},
	{
		name: "plain-syslog-sd-ids-twice",
		file: "syslog/rfc5424.go",
		from: "			if bytes.Equal(seen, id) {",
		to:   "			if false && bytes.Equal(seen, id) {",
		pkg:  "./syslog", run: "FuzzParsePlain|TestThePlainPathStops",
	},
	{
		name: "plain-syslog-any-day-of-the-month",
		file: "syslog/rfc5424.go",
		from: "	if day > daysIn(month, year) {",
		to:   "	if false && day > daysIn(month, year) {",
		pkg:  "./syslog", run: "TestShapedTimesAreTimeParsesTimes",
	},
	{
		name: "plain-syslog-path-never-taken",
		file: "syslog/rfc5424.go",
		from: "	if !p.fastOff && s.plain(msg) && fill5424(msg, &s, r) {",
		to:   "	if false && !p.fastOff && s.plain(msg) && fill5424(msg, &s, r) {",
		pkg:  "./syslog", run: "TestSampleLinesTakeThePlainPath",
	},
	{
		name: "layout2-word-looked-for-in-the-whole-tail-column",
		file: "index/block.go",
		from: "	return has[colTails] && bytes.Contains(col[colTails][p.tail.from:p.tail.to], word)\n",
		to:   "	return has[colTails] && bytes.Contains(col[colTails][p.tail.from:], word)\n",
		pkg:  "./index", run: "TestAWordDecodeKeepsExactlyTheRecordsWhoseLinesHoldIt",
	},
	{
		name: "eager-cuts-take-the-newest-records",
		file: "index/capture.go",
		from: "					before = eagerLimit\n",
		to:   "					before = 1<<62 + eagerLimit*0\n",
		pkg:  "./index", run: "TestYoungRecordsWaitUnlessMemoryRunsOut",
	},
	{
		name: "future-slices-wait-over-budget",
		file: "index/capture.go",
		from: "				case eager && sliceStart(ref.w, ref.s) > now.UnixMilli():",
		to:   "				case false && eager && sliceStart(ref.w, ref.s) > now.UnixMilli():",
		pkg:  "./index", run: "TestCopiesOfAnEarlierProcessInASliceCapturedAgain",
	},
	{
		name: "cut-copy-gives-up-on-blocked-writes-after-two-seconds",
		file: "index/capture.go",
		from: "const blockedCutWait = time.Minute",
		to:   "const blockedCutWait = 2 * time.Second",
		pkg:  "./index", run: "TestACopyWaitsOutWritesBlockedByADrop",
	},
	{
		name: "a-move-holds-every-cut-off-while-it-lists",
		file: "index/seal.go",
		from: "db.capture.holdSlice(sliceRef{w, s}) // no copy of this slice in flight, nor any later",
		to:   "db.capture.holdSlice(sliceRef{w, s}); defer db.capture.lockCuts()()",
		pkg:  "./index", run: "TestCutsGoOnWhileAMoveListsItsSlice",
	},
	{
		name: "cuts-take-records-of-a-slice-being-listed",
		file: "index/capture.go",
		from: "if sc.broken || sc.closed || c.held[ref] {",
		to:   "if sc.broken || sc.closed {",
		pkg:  "./index", run: "TestCutsGoOnWhileAMoveListsItsSlice",
	},
	{
		name: "a-slice-held-only-if-its-capture-has-begun",
		file: "index/capture.go",
		from: "\tif c.held == nil {\n\t\tc.held = map[sliceRef]bool{}\n\t}\n\tc.held[ref] = true\n",
		to:   "\tif c.held == nil {\n\t\tc.held = map[sliceRef]bool{}\n\t}\n\tif c.slices[ref] != nil {\n\t\tc.held[ref] = true\n\t}\n",
		pkg:  "./index", run: "TestACutOfASliceCapturedDuringItsListingLandsBeforeItsSwitch",
	},
	{
		name: "moved-slices-drop-at-every-maintenance",
		file: "index/maintenance.go",
		from: "return db.cfg.DropMovedEvery < 0 || last == 0 ||",
		to:   "return true || db.cfg.DropMovedEvery < 0 || last == 0 ||",
		pkg:  "./index", run: "TestMovedSlicesDropAtMostEveryDropMovedEvery",
	},
	{
		name: "a-disk-nearly-full-waits-for-the-drop-cadence",
		file: "index/maintenance.go",
		from: "last == 0 || !db.space.backgroundOK() ||",
		to:   "last == 0 ||",
		pkg:  "./index", run: "TestMovedSlicesDropAtMostEveryDropMovedEvery",
	},
	{
		name: "word-byte-table-without-underscore",
		file: "record/words.go",
		from: "|| c == '_' || c >= 0x80\n\t}\n\treturn t",
		to:   "|| c >= 0x80\n\t}\n\treturn t",
		pkg:  "./record", run: "TestWordByteIsItsDefinition",
	},
	{
		name: "uncompressed-tables-ignored",
		file: "index/db.go",
		from: "	if cfg.UncompressedTables {",
		to:   "	if false && cfg.UncompressedTables {",
		pkg:  "./index", run: "TestUncompressedTablesReadAsCompressed",
	},
	{
		name: "scan-chunk-ignores-the-limit",
		file: "index/scan.go",
		from: "	if limit > 0 && limit < mergeChunk {",
		to:   "	if false && limit > 0 && limit < mergeChunk {",
		pkg:  "./index", run: "TestALimitedScanBuffersNoMoreThanItsLimit",
	},
	{
		name: "scan-chunks-unbounded-in-bytes",
		file: "index/scan.go",
		from: " && held < mergeChunkBytes; n++ {",
		to:   "; n++ {\n			_ = held",
		pkg:  "./index", run: "TestMergerBuffersABoundedChunkPerRun",
	},
	{
		name: "refusing-replica-counted",
		file: "peer/replicate/hints.go",
		from: "		if _, ok := t.mu.refused[id]; ok {\n			return false\n		}",
		to:   "		_ = id",
		pkg:  "./peer", run: "TestQuorumDoesNotCountAReplicaThatRefused",
	},
	{
		name: "test-clusters-share-gossip",
		file: "testutil/cluster.go",
		from: "	cfg.ClusterLabel = ClusterLabelFor(dir)",
		to:   "",
		pkg:  "./testutil", run: "TestClustersOfTwoTestsNeverMerge",
	},
	{
		name: "scan-skips-a-slice",
		file: "index/scan.go",
		from: "		if target = after + 1; m.reverse {",
		to:   "		if target = after + 2; m.reverse {",
		pkg:  "./index", run: "TestSlicesScanAsOneOrderedRun",
	},
	{
		name: "partition-listing-stops-at-an-empty-slice",
		file: "index/get.go",
		from: "					s = int(b) - 1 // the next slice with records",
		to:   "					return nil",
		pkg:  "./index", run: "TestSlicesScanAsOneOrderedRun",
	},
	{
		name: "old-format-not-migrated",
		file: "index/migrate.go",
		from: "	if total > 0 {",
		to:   "	if false && total > 0 {",
		pkg:  "./index", run: "TestAStoreOfTheOldFormatIsMigratedOnStart",
	},
	{
		name: "stopped-migration-marked-done",
		file: "index/migrate.go",
		from: "		if err := db.moveV1Records(total); err != nil {",
		to:   "		if err := db.moveV1Records(total); err != nil && false {",
		pkg:  "./index", run: "TestAMigrationStoppedHalfwayContinuesOnTheNextStart",
	},
	{
		name: "count-parts-carry-data",
		file: "peer/api_query.go",
		from: "		if part.IDsOnly { // a count: the coordinator needs no data",
		to:   "		if false {",
		pkg:  "./peer", run: "TestAMemberSendsOnlyIDsForACount",
	},
	{
		name: "count-cut-window-from-digests",
		file: "index/scan.go",
		from: "		if opts.Match == nil && from <= w.Start() && to >= w.End()-1 {",
		to:   "		if opts.Match == nil {",
		pkg:  "./index", run: "TestCountAgreesWithAScan",
	},
	{
		name: "newest-stops-at-an-empty-window",
		file: "index/newest.go",
		from: "			if found := db.newestIn(txn, ws[i]); found {",
		to:   "			if found := db.newestIn(txn, ws[i]); found || true {",
		pkg:  "./index", run: "TestResentRecordsAfterARestartCountOnce",
	},
	{
		name: "block-filter-skips-the-raw-line",
		file: "index/block.go",
		from: "		record.EachWord(v.Raw(), addWord)",
		to:   "		record.EachWord(nil, addWord)",
		pkg:  "./index", run: "TestBlockFilterKnowsEveryWordAndFewOthers",
	},
	{
		name: "block-filter-reads-the-encoding",
		file: "index/block.go",
		from: "		if msg, raw := v.Message(), v.Raw(); !wordsWithin(msg, raw) {\n			record.EachWord(msg, addWord)\n		}\n		record.EachWord(v.Raw(), addWord)",
		to:   "		record.EachWord(r.Data, addWord)",
		pkg:  "./index", run: "TestBlockFilterNeverRulesOutWhatAWordQueryFinds",
	},
	{
		name: "block-decoder-trusts-the-frame",
		file: "index/block.go",
		from: "			zstd.WithDecodeAllCapLimit(true))",
		to:   "			zstd.WithDecodeAllCapLimit(false))",
		pkg:  "./index", run: "TestDecodeBlockRefusesHostileBlocks|TestDecodeBlockRefusesHostileLayout2Blocks",
	},
	{
		name: "block-raw-leftovers-accepted",
		file: "index/block.go",
		from: "	if len(raws) != 0 {\n		return decodedBlock{}",
		to:   "	if len(raws) != 0 && false {\n		return decodedBlock{}",
		pkg:  "./index", run: "TestDecodeBlockRefusesHostileBlocks",
	},
	{
		name: "layout2-refs-take-the-token-length",
		file: "index/block.go",
		from: "					case length >= 0 && tag>>1 == uint64(length):",
		to:   "					case length >= 0:",
		pkg:  "./index", run: "TestBlockLayout2KeepsEveryEncodingExactly",
	},
	{
		name: "layout2-rewrites-long-uvarints",
		file: "index/block.go",
		from: "				if n == uvarintLen(tag) && m == uvarintLen(off) {",
		to:   "				if true {",
		pkg:  "./index", run: "TestBlockLayout2KeepsEveryEncodingExactly",
	},
	{
		name: "layout2-tokens-lose-their-space",
		file: "index/block.go",
		from: "		dst = append(dst, col[colTok0+blockColumn(k)][t.from:t.to]...)",
		to:   "		dst = append(dst, col[colTok0+blockColumn(k)][t.from:t.to-1]...)",
		pkg:  "./index", run: "TestBlockRoundTrip",
	},
	{
		name: "layout2-chunks-overwrite-the-first",
		file: "index/block.go",
		from: "			out.Data[from+i] = buf[start:len(buf):len(buf)]",
		to:   "			out.Data[i] = buf[start:len(buf):len(buf)]",
		pkg:  "./index", run: "TestBlockRoundTrip",
	},
	{
		name: "layout2-unclaimed-bytes-accepted",
		file: "index/block.go",
		from: "	if unclaimed != 0 {",
		to:   "	if unclaimed != 0 && false {",
		pkg:  "./index", run: "TestDecodeBlockRefusesHostileLayout2Blocks",
	},
	{
		name: "layout2-without-a-new-store-format",
		file: "index/keys.go",
		from: "const formatVersion = 6",
		to:   "const formatVersion = 5",
		pkg:  "./index", run: "TestAStoreSealedInLayout1ReadsAndSealsOn",
	},
	{
		name: "block-ids-lose-the-sequence",
		file: "index/block.go",
		from: "		ids = binary.AppendUvarint(ids, uint64(binary.BigEndian.Uint32(r.ID[12:16])))",
		to:   "		ids = binary.AppendUvarint(ids, uint64(binary.BigEndian.Uint32(r.ID[12:16])&0xffff))",
		pkg:  "./index", run: "TestBlockRoundTrip|TestBlockKeepsEveryBitOfTheIDs",
	},
	{
		name: "sealed-reverse-seeks-to-the-range-end",
		file: "index/scan.go",
		from: "		case m.reverse && m.blocks:",
		to:   "		case m.reverse && m.blocks && false:",
		pkg:  "./index", run: "TestSealedRunsReadAsLooseRecords",
	},
	{
		name: "sealed-block-ignores-the-range",
		file: "index/scan.go",
		from: "			if ms < m.from || ms > m.to {\n				if (ms < m.from) == m.reverse {",
		to:   "			if false {\n				if (ms < m.from) == m.reverse {",
		pkg:  "./index", run: "TestSealedRunsReadAsLooseRecords",
	},
	{
		name: "sealed-unordered-scan-skips-blocks",
		file: "index/scan.go",
		from: "		if _, last, isBlock := blockRange(k); isBlock && (opts.Partitions == nil",
		to:   "		if _, last, isBlock := blockRange(k); false && isBlock && (opts.Partitions == nil",
		pkg:  "./index", run: "TestSealedRunsReadAsLooseRecords",
	},
	{
		name: "sealed-get-looks-only-for-loose-keys",
		file: "index/seal.go",
		from: "	if !ok || !bytes.HasPrefix(k, runOfKey(key)) ||",
		to:   "	if true || !ok || !bytes.HasPrefix(k, runOfKey(key)) ||",
		pkg:  "./index", run: "TestSealedRunsReadAsLooseRecords",
	},
	{
		name: "sealed-partition-ids-skip-blocks",
		file: "index/get.go",
		from: "					if _, _, isBlock := blockRange(item.Key()); isBlock {",
		to:   "					if _, _, isBlock := blockRange(item.Key()); false && isBlock {",
		pkg:  "./index", run: "TestSealedRunsReadAsLooseRecords",
	},
	{
		name: "sealed-newest-ignores-blocks",
		file: "index/newest.go",
		from: "		if id, ok := lastIDOfKey(it.Item().Key()); ok",
		to:   "		if id, ok := idFromRecordKey(it.Item().Key()); ok",
		pkg:  "./index", run: "TestSealedRunsReadAsLooseRecords",
	},
	{
		name: "sealed-duplicate-check-ignores-blocks",
		file: "index/commit.go",
		from: "	if b.db.idMayBeInBlock(id) {\n		// stored loose",
		to:   "	if false {\n		// stored loose",
		pkg:  "./index", run: "TestSealedRunsReadAsLooseRecords",
	},
	{
		name: "sealed-marker-not-reloaded",
		file: "index/seal.go",
		from: "			item, err = txn.Get(blocksMarkerKey(w))",
		to:   "			item, err = txn.Get(blocksMarkerKey(w + 1_000_000))",
		pkg:  "./index", run: "TestSealedRunsReadAsLooseRecords",
	},
	{
		name: "late-record-leaves-the-block-sealed",
		file: "index/commit.go",
		from: "	bk, blk, err := b.db.coveringBlock(id)\n	if bk == nil || err != nil {",
		to:   "	bk, blk, err := b.db.coveringBlock(id)\n	if true || bk == nil || err != nil {",
		pkg:  "./index", run: "TestLateWritesAndDeletesInsideBlocks",
	},
	{
		name: "unseal-twice-in-one-transaction",
		file: "index/commit.go",
		from: "	if w, ok := b.unsealed[string(bk)]; ok {",
		to:   "	if w, ok := b.unsealed[string(bk)]; ok && false {",
		pkg:  "./index", run: "TestLateWritesAndDeletesInsideBlocks|TestDeletesOfOneBlockInOneRequest",
	},
	{
		name: "reads-see-transactions-half-applied",
		file: "index/snapshot.go",
		from: "	txn := db.bdb.NewTransactionAt(ts, false)",
		to:   "	txn := db.bdb.NewTransactionAt(readAll, false)",
		pkg:  "./index", run: "TestReadsBesideTheSealerAreExact",
	},
	{
		name: "read-ts-never-advances",
		file: "index/commit.go",
		from: "		db.advanceReadTs(w.ts) // before any of its writers is acknowledged",
		to:   "		// db.advanceReadTs(w.ts) // before any of its writers is acknowledged",
		pkg:  "./index", run: "TestWriteScanGetRoundTrip|TestReadsBesideTheSealerAreExact",
	},
	{
		name: "sealer-never-rereads-a-sealed-window",
		file: "index/seal.go",
		from: "		if g, ok := db.sealedGen[w]; ok && g == gen {",
		to:   "		if _, ok := db.sealedGen[w]; ok {",
		pkg:  "./index", run: "TestSealerSealsEndedWindows",
	},
	{
		name: "unseal-transaction-left-in-flight",
		file: "index/commit.go",
		from: "	if b.extra > 0 {\n		// it unsealed blocks",
		to:   "	if false {\n		// it unsealed blocks",
		pkg:  "./index", run: "TestDuplicatesAfterUnsealsInOneRequest",
	},
	{
		name: "block-cut-by-count-only",
		file: "index/seal.go",
		from: "			if j > i && (n+len(units[j].recs) > per || size+us > maxBytes) {",
		to:   "			if j > i && (n+len(units[j].recs) > per || size+us > maxBytes*1000) {",
		pkg:  "./index", run: "TestBlocksOfLargeRecordsUnseal",
	},
	{
		name: "seal-leaves-the-loose-records",
		file: "index/seal.go",
		from: "					for _, u := range g.group.units {\n						if err := txn.Delete(u.key); err != nil {",
		to:   "					for _, u := range g.group.units[:0] {\n						if err := txn.Delete(u.key); err != nil {",
		pkg:  "./index", run: "TestSealedRunsReadAsLooseRecords|TestLateWritesAndDeletesInsideBlocks",
	},
	{
		name: "word-matches-substrings",
		file: "query/query.go",
		from: "		if len(word) > 0 && !record.ContainsWord(v.Message(), word) && !record.ContainsWord(v.Raw(), word) {",
		to:   "		if len(word) > 0 && !bytes.Contains(v.Message(), word) && !bytes.Contains(v.Raw(), word) {",
		pkg:  "./query", run: "TestMatcher",
	},
	{
		name: "dashboard-whole-words-ignored",
		file: "dashboard/static/app.js",
		from: "    if (v !== '') p.set(id === 'q-contains' && $('q-words').checked ? 'word' : $(id).name, v);",
		to:   "    if (v !== '') p.set($(id).name, v);",
		pkg:  "./dashboard", run: "TestDashboardInABrowser",
	},
	{
		name: "gc-watch-ignores-the-heap",
		file: "cmd/logmesh/gcwatch.go",
		from: "	return share, share >= starvedGCShare && float64(cur.live) >= starvedHeapShare*float64(cur.limit)",
		to:   "	return share, share >= starvedGCShare",
		pkg:  "./cmd/logmesh", run: "TestGCStarvedNeedsABusyCollectorAndAFullHeap",
	},
	{
		name: "gc-watch-averages-the-whole-life",
		file: "cmd/logmesh/gcwatch.go",
		from: "		prev = cur\n",
		to:   "",
		pkg:  "./cmd/logmesh", run: "TestGCWatcherJudgesEachIntervalAndWarnsAgainAfterTheQuietPeriod",
	},
	{
		name: "gc-watch-warns-every-sample",
		file: "cmd/logmesh/gcwatch.go",
		from: "		if !starved || (!warned.IsZero() && time.Since(warned) < w.quiet) {",
		to:   "		if !starved || (!warned.IsZero() && false) {",
		pkg:  "./cmd/logmesh", run: "TestGCWatcherWarnsOnceAndStops",
	},
	{
		name: "sorted-scan-unsorted",
		file: "index/scan_sorted.go",
		from: "		wg.Go(func() { sortByID(found[k], dst); found[k] = dst })",
		to:   "		wg.Go(func() { copy(dst, found[k]); found[k] = dst })",
		pkg:  "./index", run: "TestSlicesScanAsOneOrderedRun|TestSealedRunsReadAsLooseRecords",
	},
	{
		name: "sorted-scan-drops-a-slice-over-budget",
		file: "index/scan_sorted.go",
		from: "			if err := scanRange(ctx, txn, sh, from, to, opts, fn); err != nil {",
		to:   "			if err := scanRange(ctx, txn, sh, from, to, opts, fn); err != nil || true {",
		pkg:  "./index", run: "TestSlicesScanAsOneOrderedRun|TestSealedRunsReadAsLooseRecords",
	},
	{
		name: "slice-readers-skip-a-partition",
		file: "index/scan_sorted.go",
		from: "					end = runPrefix(w, at, record.Partition(p.pTo))",
		to:   "					end = runPrefix(w, at, record.Partition(p.pTo-1))",
		pkg:  "./index", run: "TestSlicesScanAsOneOrderedRun|TestSealedRunsReadAsLooseRecords",
	},
	{
		name: "slice-readers-skip-blocks",
		file: "index/scan.go",
		from: "			return scanBlock(item, from, to, opts, fn)",
		to:   "			return nil",
		pkg:  "./index", run: "TestSealedRunsReadAsLooseRecords",
	},
	{
		name: "sparse-pieces-leave-out-a-slice",
		file: "index/scan_sorted.go",
		from: "lo + (k+1)*(hi-lo+1)/n - 1, 0, record.NumPartitions})",
		to:   "lo + (k+1)*(hi-lo+1)/n - 2, 0, record.NumPartitions})",
		pkg:  "./index", run: "TestSlicesScanAsOneOrderedRun|TestSealedRunsReadAsLooseRecords",
	},
	{
		name: "sparse-window-over-budget-fails",
		file: "index/scan_sorted.go",
		from: "		if !errors.Is(err, errOverBudget) {\n			return err",
		to:   "		if true {\n			return err",
		pkg:  "./index", run: "TestSlicesScanAsOneOrderedRun|TestSealedRunsReadAsLooseRecords",
	},
	{
		name: "sorted-scan-keeps-its-bytes",
		file: "index/scan_sorted.go",
		from: "	sortedInUse.Add(-c.held)\n",
		to:   "	_ = c.held\n",
		pkg:  "./index", run: "TestSlicesScanAsOneOrderedRun|TestParallelScanMatchesSerial",
	},
	{
		name: "sorted-scan-ignores-the-process-total",
		file: "index/scan_sorted.go",
		from: "				if size.Add(r) > sortedScanBudget || total > sortedScanTotal {",
		to:   "				if size.Add(r) > sortedScanBudget || total < 0 {",
		pkg:  "./index", run: "TestSlicesScanAsOneOrderedRun",
	},
	{
		name: "block-filter-never-skips",
		file: "index/block.go",
		from: "	if !h.mayHaveWord(word) {\n		if skipped != nil {",
		to:   "	if false && !h.mayHaveWord(word) {\n		if skipped != nil {",
		pkg:  "./index", run: "TestSealedRunsReadAsLooseRecords",
	},
	{
		name: "block-filter-skips-every-block",
		file: "index/block.go",
		from: "	if !h.mayHaveWord(word) {\n		if skipped != nil {",
		to:   "	if _ = h; true {\n		if skipped != nil {",
		pkg:  "./index", run: "TestSealedRunsReadAsLooseRecords|TestLateWritesAndDeletesInsideBlocks",
	},
	{
		name: "sealer-ignores-changes-since-its-snapshot",
		file: "index/seal.go",
		from: "	return it.Valid()\n}",
		to:   "	return false\n}",
		pkg:  "./index", run: "TestSealerLeavesARunThatChangedWhileItEncoded",
	},
	{
		name: "query-word-not-passed-to-the-store",
		file: "peer/api_query.go",
		from: "		opts.Word = []byte(q.Word)",
		to:   "		_ = q.Word",
		pkg:  "./peer", run: "TestAWordQuerySkipsSealedBlocksWithoutTheWord",
	},
	{
		name: "backlog-oldest-from-the-first-entry",
		file: "peer/replicate/lows.go",
		from: "	for i > 0 && l.s[i-1].at >= ms {",
		to:   "	for false && i > 0 && l.s[i-1].at >= ms {",
		pkg:  "./peer/...", run: "TestOldestWaitingIsTheOldestOfEveryEntryAfterTheCursor|TestRecordsMintedByAClockSteppedBackAreOwedToo",
	},
	{
		name: "genesis-while-a-member-is-reassigned",
		file: "peer/repair/completeness.go",
		from: "		if name != v.Self && m.Status != gossip.StatusLeft && !v.Placed(name) {",
		to:   "		if _, _ = name, m; false {",
		pkg:  "./peer/repair", run: "TestNoGenesisWhileAFailedMemberIsReassigned",
	},
	{
		name: "genesis-without-proofs-between-owners",
		file: "peer/repair/completeness.go",
		from: "genesis && !claims[p] && (newCluster || proven[p]):",
		to:   "genesis && !claims[p] && (newCluster || proven != nil):",
		pkg:  "./peer/repair", run: "TestGenesisAfterTheHoldersAreGoneWaitsForProofs",
	},
	{
		name: "fresh-joiner-takes-an-old-cluster-for-new",
		file: "peer/repair/completeness.go",
		from: "newCluster = !r.Clustered() && claims.Empty() && !othersClustered(v)",
		to:   "newCluster = !r.Clustered() && claims.Empty() && !othersClustered(v) || !r.Clustered()",
		pkg:  "./peer/repair", run: "TestAFreshStoreJoiningAClusterThatExistedIsNotNew",
	},
	{
		name: "genesis-waits-for-proofs-with-anti-entropy-off",
		file: "peer/repair/completeness.go",
		from: "!othersClustered(v) || r.cfg.Disabled",
		to:   "!othersClustered(v) || false && r.cfg.Disabled",
		pkg:  "./peer/repair", run: "TestGenesisAfterTheHoldersAreGoneWaitsForProofs",
	},
	{
		name: "value-log-never-paged-out",
		file: "index/mapped_linux.go",
		from: `if !(bytes.HasSuffix(path, []byte(".sst")) || bytes.HasSuffix(path, []byte(".vlog"))) ||`,
		to:   `if !bytes.HasSuffix(path, []byte(".sst")) ||`,
		pkg:  "./index", run: "TestValueLogStoreReadsAsTheTree",
	},
	{
		name: "value-threshold-ignored",
		file: "index/db.go",
		from: "	if cfg.ValueThreshold > 0 {",
		to:   "	if false && cfg.ValueThreshold > 0 {",
		pkg:  "./index", run: "TestValueLogStoreReadsAsTheTree",
	},
	{
		name: "sealer-skips-the-current-windows-slices",
		file: "index/seal.go",
		from: "			if from >= to {",
		to:   "			if true || from >= to {",
		pkg:  "./index", run: "TestSealerSealsEndedWindows",
	},
	{
		name: "sealer-seals-the-current-slice",
		file: "index/seal.go",
		from: "			to := uint8((limit - w.Start()) / SliceMillis)",
		to:   "			to := uint8((limit-w.Start())/SliceMillis) + 1",
		pkg:  "./index", run: "TestSealerSealsEndedWindows",
	},
	{
		name: "marker-slices-not-loaded",
		file: "index/seal.go",
		from: "				db.noteBlocks(w, markerSlices(v))",
		to:   "				db.noteBlocks(w, 0)",
		pkg:  "./index", run: "TestSliceMarkersSayWhichSlicesHoldBlocks",
	},
	{
		name: "writes-never-look-for-a-covering-block",
		file: "index/seal.go",
		from: "	return db.sliceMayHaveBlocks(id.Window(), sliceOf(id.Millis()))",
		to:   "	return false && db.sliceMayHaveBlocks(id.Window(), sliceOf(id.Millis()))",
		pkg:  "./index", run: "TestSliceMarkersSayWhichSlicesHoldBlocks|TestLateWritesAndDeletesInsideBlocks",
	},
	{
		name: "marker-names-the-wrong-slice",
		file: "index/seal.go",
		from: "			db.noteBlocks(w, sliceBit(s)) // before any reader or writer can meet the block",
		to:   "			db.noteBlocks(w, sliceBit(s+1)) // before any reader or writer can meet the block",
		pkg:  "./index", run: "TestSliceMarkersSayWhichSlicesHoldBlocks|TestLateWritesAndDeletesInsideBlocks",
	},
	{
		name: "marker-written-only-for-slices-not-yet-noted",
		file: "index/seal.go",
		from: "			if db.markedSlices(w)&sliceBit(s) == 0 {",
		to:   "			if !db.sliceMayHaveBlocks(w, s) {",
		pkg:  "./index", run: "TestSliceMarkersSayWhichSlicesHoldBlocks",
	},
	{
		name: "seal-transaction-overfills",
		file: "index/seal.go",
		from: "			if len(txnGroups) > 0 && (txnBytes+size > maxBytes || txnKeys+keys > maxCount) {",
		to:   "			if len(txnGroups) > 0 && txnKeys < 0 && maxBytes+maxCount < 0 {",
		pkg:  "./index", run: "TestSealPacksRunsIntoTransactionsBadgerTakes",
	},
	{
		name: "deletes-never-settled",
		file: "index/settle.go",
		from: "			if hidden && !item.IsDeletedOrExpired() {",
		to:   "			if hidden && !item.IsDeletedOrExpired() && v == 0 {",
		pkg:  "./index", run: "TestValueLogCollectionBesideTheSealerResurrectsNothing|TestRemovalsAndUnsealsAreSettled|TestSettlingWaitsForOlderSnapshots|TestMigratedRecordsAreSettled",
	},
	{
		name: "settle-before-snapshots-end",
		file: "index/maintenance.go",
		from: "		done <- db.discardBelow()",
		to:   "		done <- db.ts.Load()",
		pkg:  "./index", run: "TestSettlingWaitsForOlderSnapshots",
	},
	{
		name: "discard-passes-commits-in-flight",
		file: "index/db.go",
		from: "	return ts, txn.CommitAt(ts, nil)",
		to:   "	db.stamping.RUnlock(); defer db.stamping.RLock(); return ts, txn.CommitAt(ts, nil)",
		pkg:  "./index", run: "TestDiscardNeverPassesAnUnsettledDelete",
	},
	{
		name: "migration-deletes-not-settled",
		file: "index/migrate.go",
		from: "			if err := db.settleLater(txn, []keyRange{span}); err != nil {",
		to:   "			if err := db.settleLater(txn, nil); err != nil && span.start == nil {",
		pkg:  "./index", run: "TestMigratedRecordsAreSettled",
	},
	{
		name: "removals-not-settled",
		file: "index/commit.go",
		from: "		b.deleting(key)",
		to:   "		_ = key",
		pkg:  "./index", run: "TestRemovalsAndUnsealsAreSettled",
	},
	{
		name: "unseals-not-settled",
		file: "index/commit.go",
		from: "	b.deleting(bk)",
		to:   "	_ = bk",
		pkg:  "./index", run: "TestRemovalsAndUnsealsAreSettled",
	},
	{
		name: "completeness-saves-unordered",
		file: "peer/repair/completeness.go",
		from: "	c.saving.Lock()\n	defer c.saving.Unlock()\n",
		to:   "",
		pkg:  "./peer/repair", run: "TestConcurrentSavesStoreTheNewestState",
	},
	{
		name: "down-owner-retried-at-once",
		file: "peer/repair/handover.go",
		from: "			left.blocked = true\n			continue // cannot confirm with every owner now",
		to:   "			left.more = true\n			continue // cannot confirm with every owner now",
		pkg:  "./peer/repair", run: "TestWorkWaitingOnADownPeerBacksOff",
	},
	{
		name: "slow-failing-hand-over-cut-short",
		file: "peer/repair/handover.go",
		from: "		left.more, left.blocked = !failed, left.blocked || failed",
		to:   "		left.more = true",
		pkg:  "./peer/repair", run: "TestHandOverToAnOwnerWhoseCallsFailSlowlyBacksOff",
	},
	{
		name: "moved-switch-skips-recopy",
		file: "index/switch.go",
		from: "		if ok && v <= c.ts {\n			continue",
		to:   "		if ok || v <= c.ts {\n			continue",
		pkg:  "./index", run: "TestAMoveCopiesWhatChangedBeforeItsSwitch",
	},
	{
		name: "moved-drop-ignores-snapshots",
		file: "index/moved.go",
		from: "mw.dropped&bit == 0 && mw.at[s] <= upTo",
		to:   "mw.dropped&bit == 0",
		pkg:  "./index", run: "TestMovedSlicesReadExactly",
	},
	{
		name: "moved-readers-read-loose",
		file: "index/moved.go",
		from: "	if !ok || mw.latest <= ts {\n		return mw.set",
		to:   "	if !ok || mw.latest <= ts {\n		return 0",
		pkg:  "./index", run: "TestMovedSlicesReadExactly",
	},
	{
		name: "moved-ghosts-kept",
		file: "index/seal.go",
		from: "	if err != nil || len(prefixes) == 0 {\n		return 0, err\n	}\n	t0 := time.Now()",
		to:   "	if true {\n		return 0, err\n	}\n	t0 := time.Now()",
		pkg:  "./index", run: "TestAnUnfinishedMoveLeavesNothingBehind",
	},
	{
		name: "moved-writers-write-loose",
		file: "index/commit.go",
		from: "	b.keys = appendRecordKeyIn(b.keys, b.db.movedNow(id.Window()), id)",
		to:   "	b.keys = appendRecordKeyIn(b.keys, 0, id)",
		pkg:  "./index", run: "TestLateWritesAndDeletesInsideBlocks",
	},
	{
		name: "move-listing-snapshot-unregistered",
		file: "index/seal.go",
		from: "	txn, release := db.snapshot()\n	defer release()\n	listTs := txn.ReadTs()",
		to:   "	txn := db.bdb.NewTransactionAt(db.readTs.Load(), false)\n	defer txn.Discard()\n	listTs := txn.ReadTs()",
		pkg:  "./index", run: "TestADeleteBeforeTheSwitchStaysDeleted|TestARunChangedWhileItIsCopiedIsMoved",
	},
	{
		name: "switch-copies-every-changed-run",
		file: "index/seal.go",
		from: "const switchRounds = 3",
		to:   "const switchRounds = 0",
		pkg:  "./index", run: "TestAFloodOfLateRecordsIsCopiedBeforeTheSwitch",
	},
	{
		name: "switch-in-one-transaction",
		file: "index/switch.go",
		from: "	maxBytes, maxCount := db.bdb.MaxBatchSize()/2, db.bdb.MaxBatchCount()/2",
		to:   "	maxBytes, maxCount := int64(1<<40), int64(1<<40)",
		pkg:  "./index", run: "TestASwitchOfManyLateRecordsTakesSeveralTransactions|TestASwitchOfLargeRecordsFitsATransaction|TestAMoveSwitchesBesideATrickleOfLateRecords|TestAFloodOfLateRecordsIsCopiedBeforeTheSwitch",
	},
	{
		name: "switch-delta-keeps-covering-blocks",
		file: "index/switch.go",
		from: "if first, last, ok := blockRange(next); ok && record.Compare(id, first) >= 0",
		to:   "if first, last, ok := blockRange(next); false && ok && record.Compare(id, first) >= 0",
		pkg:  "./index", run: "TestAMoveCopiesWhatChangedBeforeItsSwitch",
	},
	{
		name: "move-drops-copies-of-runs-changed-meanwhile",
		file: "index/seal.go",
		from: "		if !plan.moving() && db.changedSince(runPrefix(plan.w, plan.s, plan.p), plan.ts) {",
		to:   "		if db.changedSince(runPrefix(plan.w, plan.s, plan.p), plan.ts) {",
		pkg:  "./index", run: "TestAMoveSwitchesBesideATrickleOfLateRecords",
	},
	{
		name: "switch-merge-keeps-deleted-records",
		file: "index/switch.go",
		from: "		if c.del {\n			continue\n		}\n		if !held {",
		to:   "		if c.del {\n			if held {\n				recs = append(recs, blockRecord{ID: id, Data: blk.Data[i-1]})\n			}\n			continue\n		}\n		if !held {",
		pkg:  "./index", run: "TestASwitchMergesLateRecordsIntoTheirBlocks|TestARunEmptiedBeforeTheSwitchDoesNotStopTheMove|TestEdgeChangesOfMovedBlocksReadExactly",
	},
	{
		name: "switch-reuses-stale-merges",
		file: "index/switch.go",
		from: "				if m, ok := merges[string(bk)]; ok && sameChanges(m.changes, in) {",
		to:   "				if m, ok := merges[string(bk)]; ok {",
		pkg:  "./index", run: "TestASwitchMergesLateRecordsIntoTheirBlocks|TestEdgeChangesOfMovedBlocksReadExactly",
	},
	{
		name: "switch-merges-past-the-block-bound",
		file: "index/switch.go",
		from: "			if j > i && (j-i >= per || size+rs > maxBytes) {",
		to:   "			if j > i && (j-i >= 1<<16 && size+rs > maxBytes) {",
		pkg:  "./index", run: "TestMergedBlocksKeepTheSealersBounds",
	},
	{
		name: "switch-merge-cut-counts-records-only",
		file: "index/switch.go",
		from: "			if j > i && (j-i >= per || size+rs > maxBytes) {",
		to:   "			if j > i && (j-i >= per || size+rs > maxBytes<<20) {",
		pkg:  "./index", run: "TestMergedBlocksKeepTheSealersBounds",
	},
	{
		name: "records-sealed-skips-merged",
		file: "index/seal.go",
		from: "		n := sw.added",
		to:   "		n := 0",
		pkg:  "./index", run: "TestRecordsSealedCountsEachRecordOncePerSealing",
	},
	{
		name: "failed-group-keeps-its-writers-content",
		file: "index/commit.go",
		from: "				c.req.err = fmt.Errorf(\"index: commit: not written, since another write of its group failed: %w\", b.err)",
		to:   "				c.req.err = nil",
		pkg:  "./index", run: "TestWritePathAFailedDuplicateCheckLosesNoOtherWrite",
	},
	{
		name: "failed-group-waits-for-an-unused-sequence",
		file: "index/commit.go",
		from: "		req.waitSeq = min(req.waitSeq, last)",
		to:   "		req.waitSeq = max(req.waitSeq, last)",
		pkg:  "./index", run: "TestWritePathAFailedDuplicateCheckLosesNoOtherWrite",
	},
	{
		name: "fits-forgets-the-settle-and-meta-entries",
		file: "index/commit.go",
		from: "	return int64(ids+b.extra+5) < maxCount",
		to:   "	return int64(ids+b.extra+3) < maxCount",
		pkg:  "./index", run: "TestWritePathWriteMetaFillingATransaction|TestWritePathUnsealedRecordsCountInTheTransaction",
	},
	{
		name: "retry-reads-past-transactions-in-flight",
		file: "index/commit.go",
		from: "	if b.retry {\n		// A retry's first attempt was queued before it (submit, FIFO): in\n		// this group, or in an earlier one whose transactions may not be\n		// visible yet. Wait for those; this group's are found in flight.\n		db.drainInflight()",
		to:   "	if b.retry {\n		// A retry's first attempt was queued before it (submit, FIFO): in\n		// this group, or in an earlier one whose transactions may not be\n		// visible yet. Wait for those; this group's are found in flight.",
		pkg:  "./index", run: "TestARetryBehindItsFirstAttemptInFlightWritesNothingTwice",
	},
	{
		name: "send-leaves-its-records-unnamed",
		file: "index/commit.go",
		from: "	for _, id := range work.remote {\n		db.pipe.mu.remote[id] = work\n	}\n",
		to:   "",
		pkg:  "./index", run: "TestARetryBesideItsFirstAttemptInOneGroupWritesNothingTwice|TestADuplicateOfAFailedCommitInFlightFails|TestADuplicateOfAFailedCommitFails",
	},
	{
		name: "duplicate-not-tied-to-the-write-in-flight",
		file: "index/commit.go",
		from: "		holder.credits = append(holder.credits, credit{req: req})",
		to:   "		_ = holder",
		pkg:  "./index", run: "TestADuplicateOfAFailedCommitFails|TestADuplicateOfAFailedCommitInFlightFails|TestADuplicateInADiscardedTransactionFails",
	},
	{
		name: "delete-of-a-missing-record-keeps-it-in-flight",
		file: "index/commit.go",
		from: "			// nothing to delete: a write of it is no duplicate\n			b.release([]record.ID{id})\n",
		to:   "			// nothing to delete: a write of it is no duplicate\n",
		pkg:  "./index", run: "TestAWriteBesideADeleteOfTheMissingRecordStoresIt",
	},
	{
		name: "failed-meta-entry-stays-in-flight",
		file: "index/commit.go",
		from: "				if req.origin != OriginLocal {\n					b.release([]record.ID{e.ID}) // registered by isDuplicate\n				}\n				return\n			}\n			b.size += entrySize(me.Key, me.Value)",
		to:   "				return\n			}\n			b.size += entrySize(me.Key, me.Value)",
		pkg:  "./index", run: "TestAFailedMetaEntryLeavesNothingInFlight",
	},
	{
		name: "fits-forgets-the-meta-bytes",
		file: "index/commit.go",
		from: "b.size+entrySize(key, value)+meta+journal",
		to:   "b.size+entrySize(key, value)+journal",
		pkg:  "./index", run: "TestAMetaValueStartsTheNextTransaction",
	},
	{
		name: "submit-waits-past-close",
		file: "index/commit.go",
		from: "	case <-db.pipe.finished:\n",
		to:   "	case <-make(chan struct{}):\n",
		pkg:  "./index", run: "TestAWriteReachingTheQueueAfterCloseIsAnswered",
	},
	{
		name: "a-delete-in-flight-counts-as-a-write",
		file: "index/commit.go",
		from: "	if inflight && holder != nil && holder.entry.Op == OpRemove {",
		to:   "	if false {",
		pkg:  "./index", run: "TestAWriteBehindADeleteOfItsRecordInOneGroupStoresIt|TestAWriteBehindADeleteInFlightStoresIt",
	},
	{
		name: "a-move-across-a-cutoff-that-went-back-switches",
		file: "index/seal.go",
		from: "	if db.cutoffBacks.Load() != backs {",
		to:   "	if false {",
		pkg:  "./index", run: "TestACutoffThatMovesBackDuringAMoveLosesNothing",
	},
	{
		name: "a-cut-left-out-for-an-expired-window-stays-trusted",
		file: "index/capture.go",
		from: "				db.capture.breakSlice(sliceRef{plan.w, plan.s})\n			}\n		}\n		blockedSince",
		to:   "			}\n		}\n		blockedSince",
		pkg:  "./index", run: "TestACutLeftOutForAnExpiredWindowIsReadBack",
	},
	{
		name: "a-clear-of-the-moved-space-leaves-the-capture-trusted",
		file: "index/seal.go",
		from: "			db.capture.breakSlice(sliceRef{w, sliceOfKey(p) &^ movedSpace})",
		to:   "			_ = p",
		pkg:  "./index", run: "TestAFailedMoveDoesNotClearTheCutsOfACaptureBegunAfterItsWindowCameBack",
	},
	{
		name: "a-drop-of-moved-slices-trusts-its-listing",
		file: "index/maintenance.go",
		from: "				if movedAt(now, w, s) != movedAt(listed, w, s) {",
		to:   "				if movedAt(now, w, s) != movedAt(now, w, s) {",
		pkg:  "./index", run: "TestADropOfMovedSlicesListedBeforeAnExpireAndACutoffBackLosesNothing|TestADropOfMovedSlicesSparesASliceMovedAgainSinceItsListing",
	},
	{
		name: "a-drop-of-moved-slices-notes-a-later-move-dropped",
		file: "index/moved.go",
		from: "				if mw.at[s] != listed.at[s] {",
		to:   "				if mw.at[s] != mw.at[s] {",
		pkg:  "./index", run: "TestADropOfMovedSlicesNotesDroppedOnlyWhatItDropped",
	},
	{
		name: "retention-drops-value-log-blocks-whole",
		file: "index/maintenance.go",
		from: "			if b&^(movedSpace-1) != movedSpace { // not in the moved space",
		to:   "			if true {",
		pkg:  "./index", run: "TestRetentionReclaimsTheValueLogOfExpiredBlocks|TestRetentionReclaimsLargeBlocksWithoutAValueThreshold",
	},
	{
		name: "retention-lists-the-window-outside-the-committer",
		file: "index/maintenance.go",
		from: "	err := db.inCommitter(func() error {\n		prefixes, err := db.prefixesWithKeys(candidates)",
		to:   "	prefixes, lerr := db.prefixesWithKeys(candidates)\n	err := db.inCommitter(func() error {\n		err := lerr",
		pkg:  "./index", run: "TestASwitchCommittedWhileRetentionListsTheWindowLeavesNoMarker",
	},
	{
		name: "retention-deletes-one-batch-of-blocks",
		file: "index/maintenance.go",
		from: "		deleted += len(keys)\n		from = append(",
		to:   "		return deleted + len(keys), nil\n		from = append(",
		pkg:  "./index", run: "TestRetentionReclaimsTheValueLogOfExpiredBlocks",
	},
	{
		name: "retention-forgets-moved-slices-only-when-done",
		file: "index/maintenance.go",
		from: "	db.forgetWindowsBefore(cutoff)\n	for _, w := range ws {",
		to:   "	for _, w := range ws {",
		pkg:  "./index", run: "TestARetentionThatFailsAfterDroppingAWindowsMarkersLosesNothing",
	},
	{
		name: "capture-trusts-its-count",
		file: "index/capture.go",
		from: "		if dup || rc.cut+len(recs) != listed[p] {",
		to:   "		if dup {",
		pkg:  "./index", run: "TestMovesFromMemoryReadExactly",
	},
	{
		name: "late-record-inside-a-cut-block-kept",
		file: "index/capture.go",
		from: "		if rc.cut > 0 && record.Compare(r.ID, rc.cutTo) <= 0 {",
		to:   "		if false {",
		pkg:  "./index", run: "TestMovesFromMemoryReadExactly",
	},
	{
		name: "failed-copy-leaves-the-capture-trusted",
		file: "index/capture.go",
		from: "		for _, plan := range plans {\n			db.capture.breakSlice(sliceRef{plan.w, plan.s})\n		}\n		return err",
		to:   "		return err",
		pkg:  "./index", run: "TestACopyThatFailsIsReadBackWhole",
	},
	{
		name: "capture-begins-in-a-slice-with-records",
		file: "index/capture.go",
		from: "			sc.broken = !empty(ref)",
		to:   "			sc.broken = false",
		pkg:  "./index", run: "TestOnlySlicesBegunSinceTheOpeningAreCaptured",
	},
	{
		name: "copies-of-a-run-deleted-whole-kept",
		file: "index/seal.go",
		from: "		if db.capture != nil {\n			// copies of a capture that turned out wrong",
		to:   "		if false {\n			// copies of a capture that turned out wrong",
		pkg:  "./index", run: "TestARunDeletedWholeAfterItsCutStaysDeleted",
	},
	{
		name: "capture-grows-past-its-budget",
		file: "index/capture.go",
		from: "		if c.bytes > 2*c.budget {",
		to:   "		if false {",
		pkg:  "./index", run: "TestYoungRecordsWaitUnlessMemoryRunsOut",
	},
	{
		name: "a-cut-that-cannot-be-encoded-drops-the-pass",
		file: "index/capture.go",
		from: "			continue\n		}\n		plans = append(plans, sealPlan{w: cut.ref.w",
		to:   "			return encodeErr\n		}\n		plans = append(plans, sealPlan{w: cut.ref.w",
		pkg:  "./index", run: "TestACutThatCannotBeEncodedLeavesTheOtherSlicesCuts",
	},
	{
		name: "capture-ignores-copies-in-the-moved-space",
		file: "index/capture.go",
		from: "		for _, s := range []uint8{ref.s, ref.s | movedSpace} {",
		to:   "		for _, s := range []uint8{ref.s} {",
		pkg:  "./index", run: "TestCopiesOfAnEarlierProcessInASliceCapturedAgain",
	},
	{
		name: "cut-blocks-past-the-sealers-bound",
		file: "index/capture.go",
		from: "cuts(db.cfg.Now(), min(db.cfg.SealBlockRecords, maxCount),",
		to:   "cuts(db.cfg.Now(), max(db.cfg.SealBlockRecords, maxCount-maxCount),",
		pkg:  "./index", run: "TestBlocksCutFromMemoryKeepTheSealersBounds",
	},
	{
		name: "capture-begins-before-the-opening",
		file: "index/db.go",
		from: "			since = time.UnixMilli(now - now%SliceMillis)",
		to:   "			since = time.UnixMilli(now - now%SliceMillis - SliceMillis)",
		pkg:  "./index", run: "TestOnlySlicesBegunSinceTheOpeningAreCaptured",
	},
	{
		name: "young-records-cut-at-once",
		file: "index/capture.go",
		from: "				before := limit\n",
		to:   "				before := int64(1<<62) + limit*0\n",
		pkg:  "./index", run: "TestYoungRecordsWaitUnlessMemoryRunsOut",
	},
	{
		name: "word-decode-looks-only-in-the-raw-line",
		file: "index/block.go",
		from: "		if bytes.Contains(r, word) || bytes.Contains(raws[:n], word) {",
		to:   "		if bytes.Contains(raws[:n], word) {",
		pkg:  "./index", run: "TestAWordDecodeLeavesOutOnlyRecordsWithoutTheWord",
	},
	{
		name: "word-decode-keeps-the-wrong-records",
		file: "index/block.go",
		from: "			raws = raws[skip[i]:]\n			continue",
		to:   "			continue",
		pkg:  "./index", run: "TestAWordDecodeLeavesOutOnlyRecordsWithoutTheWord",
	},
	{
		name: "keyed-write-follows-the-client-away",
		file: "peer/api_ingest.go",
		from: "	if r.Header.Get(HeaderIdempotencyKey) != \"\" {\n		// the key stays held",
		to:   "	if false {\n		// the key stays held",
		pkg:  "./peer", run: "TestAClientGivingUpWhileItsWriteIsQueuedThenRetryingStoresItOnce",
	},
	{
		name: "later-transactions-outrun-the-meta-entry",
		file: "index/commit.go",
		from: "	w := req.metaTxn\n	if w == nil {",
		to:   "	w := req.metaTxn\n	if true {",
		pkg:  "./peer", run: "TestARetryAfterTheFirstTransactionFailedStoresNothingTwice",
	},
	{
		name: "used-key-ignores-the-content",
		file: "peer/api_ingest.go",
		from: "		case found && stored != nil && !bytes.Equal(stored, fp):",
		to:   "		case found && stored == nil && !bytes.Equal(stored, fp):",
		pkg:  "./peer", run: "TestAUsedKeyRefusesADifferentBatchOfTheSameSize",
	},
	{
		name: "unseal-trusts-a-dropped-transaction",
		file: "index/commit.go",
		from: "		if w == b.work {\n			return in, nil\n		}",
		to:   "		if true || w == b.work {\n			return in, nil\n		}",
		pkg:  "./index", run: "TestWritePathADeleteComesBackToABlockWhoseUnsealWasDropped",
	},
	{
		name: "send-skips-the-drain-after-unseals",
		file: "index/commit.go",
		from: "	if b.extra > 0 {\n		// it unsealed blocks",
		to:   "	if false && b.extra > 0 {\n		// it unsealed blocks",
		pkg:  "./index", run: "TestWritePathDuplicatesBesideTheUnsealOfALargeBlock",
	},
	{
		name: "switch-reuses-merges-of-other-values",
		file: "index/switch.go",
		from: "		return x.del == y.del && bytes.Equal(x.key, y.key) && bytes.Equal(x.value, y.value)",
		to:   "		return x.del == y.del && bytes.Equal(x.key, y.key)",
		pkg:  "./index", run: "TestSwitchValueChangedBetweenThePlanAndTheSwitch",
	},
	{
		name: "switch-leaves-its-deletes-unsettled",
		file: "index/switch.go",
		from: "		deletes := slices.ContainsFunc(chunk, func(op moveOp) bool { return op.del })",
		to:   "		deletes := false && slices.ContainsFunc(chunk, func(op moveOp) bool { return op.del })",
		pkg:  "./index", run: "TestASwitchSettlesItsDeletes",
	},
	{
		name: "switch-cut-one-past-the-bound",
		file: "index/switch.go",
		from: "			if j > i && (j-i >= per || size+rs > maxBytes) {",
		to:   "			if j > i && (j-i > per || size+rs > maxBytes) {",
		pkg:  "./index", run: "TestSwitchMergedBlocksNeverExceedSealBlockRecords",
	},
	{
		name: "switch-keeps-deleted-loose-copies",
		file: "index/switch.go",
		from: "			// the records too few for a block, Config.SealMinRecords)\n			del(c.key)",
		to:   "			// the records too few for a block, Config.SealMinRecords)\n			_ = del",
		pkg:  "./index", run: "TestAMoveCopiesRunsTooSmallForABlockLoose",
	},
	{
		name: "move-leaves-small-runs-behind",
		file: "index/seal.go",
		from: "			if plan.moving() {\n				plan.groups = append(plan.groups, sealGroup{units: group,",
		to:   "			if false {\n				plan.groups = append(plan.groups, sealGroup{units: group,",
		pkg:  "./index", run: "TestAMoveCopiesRunsTooSmallForABlockLoose",
	},
	{
		name: "seal-ignores-the-minimum",
		file: "index/seal.go",
		from: "	fewest := min(db.cfg.SealMinRecords, per)",
		to:   "	fewest := 1",
		pkg:  "./index", run: "TestRunsTooSmallForABlockStayLoose|TestAMoveCopiesRunsTooSmallForABlockLoose",
	},
	{
		name: "move-writes-no-loose-copy",
		file: "index/seal.go",
		from: "					for i, k := range g.group.movedKeys(p.to) {",
		to:   "					for i, k := range g.group.movedKeys(p.to)[:0] {",
		pkg:  "./index", run: "TestAMoveCopiesRunsTooSmallForABlockLoose",
	},
	{
		name: "loose-copies-count-as-blocks",
		file: "index/seal.go",
		from: "			if g.group.loose {\n				continue // copied loose: no block",
		to:   "			if false {\n				continue // copied loose: no block",
		pkg:  "./index", run: "TestAMoveCopiesRunsTooSmallForABlockLoose",
	},
	{
		name: "records-sealed-counts-copied-blocks",
		file: "index/seal.go",
		from: "			if u.loose {\n				n += len(u.recs)",
		to:   "			if true || u.loose {\n				n += len(u.recs)",
		pkg:  "./index", run: "TestRecordsSealedCountsEachRecordOncePerSealing",
	},
	{
		name: "compact-skips-drop-beside-collection",
		file: "index/baseline.go",
		from: "	if err := db.dropMoved(true); err != nil {",
		to:   "	if err := db.dropMoved(false); err != nil {",
		pkg:  "./index", run: "TestCompactDropsMovedSlicesBesideACollection",
	},
	{
		name: "failed-switch-keeps-copies",
		file: "index/seal.go",
		from: "			if h, cerr := db.clearMoveSpace(w, []uint8{s}); cerr == nil {",
		to:   "			if h, cerr := time.Duration(0), error(nil); cerr == nil {",
		pkg:  "./index", run: "TestAFailedSwitchLeavesNoCopies",
	},
	{
		name: "drops-of-moved-slices-overlap",
		file: "index/maintenance.go",
		from: "		db.dropping.Lock()\n	} else if !db.dropping.TryLock() {\n		return nil\n	}\n	defer db.dropping.Unlock()",
		to:   "	} else if false {\n	}",
		pkg:  "./index", run: "TestConcurrentDropsCountEachSliceOnce",
	},
	{
		name: "sealer-plans-a-batch-twice",
		file: "index/seal.go",
		from: "		planNext(i + 1)",
		to:   "		planNext(i)",
		pkg:  "./index", run: "TestOneSealPassSealsEveryBatch",
	},
	{
		name: "slice-markers-keep-format-3",
		file: "index/keys.go",
		from: "const formatVersion = 6",
		to:   "const formatVersion = 3",
		pkg:  "./index", run: "TestSliceMarkersSayWhichSlicesHoldBlocks",
	},
	{
		name: "old-marker-narrowed",
		file: "index/seal.go",
		from: "				db.noteMarked(w, markerSlices(v))",
		to:   "				if len(v) == 8 {\n					db.noteMarked(w, markerSlices(v))\n				}",
		pkg:  "./index", run: "TestAFormat3StoreWithAnOldMarker",
	},
	{
		name: "filter-skips-every-message",
		file: "index/block.go",
		from: "	if !bytes.HasSuffix(raw, msg) {",
		to:   "	if false && !bytes.HasSuffix(raw, msg) {",
		pkg:  "./index", run: "TestBlockFilterNeverRulesOutWhatAWordQueryFinds|FuzzBlockRoundTrip",
	},
	{
		name: "filter-ignores-the-word-boundary",
		file: "index/block.go",
		from: "	return len(msg) == 0 || at == 0 || !record.WordByte(raw[at-1]) || !record.WordByte(msg[0])",
		to:   "	return len(msg) >= 0 || at == 0 || !record.WordByte(raw[at-1]) || !record.WordByte(msg[0])",
		pkg:  "./index", run: "TestBlockFilterNeverRulesOutWhatAWordQueryFinds|FuzzBlockRoundTrip",
	},
	{
		name: "word-set-keeps-duplicates",
		file: "index/block.go",
		from: "		case h:\n			return\n",
		to:   "",
		pkg:  "./index", run: "TestWordSetIsASet",
	},
	{
		name: "clustered-tag-never-published",
		file: "peer/tags.go",
		from: "	if p.repair.Clustered() {",
		to:   "	if false && p.repair.Clustered() {",
		pkg:  "./peer", run: "TestPeersPublishThatTheirStoreWasInACluster",
	},
	{
		name: "genesis-proof-from-before-the-claims-went",
		file: "peer/repair/completeness.go",
		from: "		if unclaimed[p].After(from) {",
		to:   "		if false && unclaimed[p].After(from) {",
		pkg:  "./peer/repair", run: "TestGenesisAfterTheHoldersAreGoneWaitsForProofs",
	},
	{
		name: "genesis-proof-from-before-owning",
		file: "peer/repair/completeness.go",
		from: "		from := since[p]",
		to:   "		from := since[p].AddDate(-100, 0, 0)",
		pkg:  "./peer/repair", run: "TestGenesisAfterTheHoldersAreGoneWaitsForProofs",
	},
	{
		name: "completeness-outlives-deleted-copies",
		file: "peer/repair/completeness.go",
		from: "		if now.After(c.mu.deleted[p]) {\n			c.mu.deleted[p] = now\n		}\n		if c.mu.complete[p] {",
		to:   "		if false {\n			c.mu.deleted[p] = now\n		}\n		if false {",
		pkg:  "./peer/repair", run: "TestCopiesDeletedAfterAProofUndoTheCompletenessItGave",
	},
	{
		name: "proof-counts-while-copies-are-deleted",
		file: "peer/repair/completeness.go",
		from: "	if c.mu.complete[p] || c.mu.deleting[p] > 0 || !at.After(c.mu.deleted[p]) {",
		to:   "	if c.mu.complete[p] || !at.After(c.mu.deleted[p]) {",
		pkg:  "./peer/repair", run: "TestCopiesDeletedAfterAProofUndoTheCompletenessItGave",
	},
	{
		name: "repair-told-after-the-delete",
		file: "peer/replicate/hints.go",
		from: "			if r.cfg.Deleting != nil {\n				defer r.cfg.Deleting(keep)()\n			}\n			_, err := r.db.Delete(ctx, keep)\n",
		to:   "			_, err := r.db.Delete(ctx, keep)\n			if r.cfg.Deleting != nil {\n				r.cfg.Deleting(keep)()\n			}\n",
		pkg:  "./peer/replicate", run: "TestHandedOnCopiesWaitForTheirGrace",
	},
	{
		name: "handed-on-copies-deleted-at-once",
		file: "peer/retire/retire.go",
		from: "	for n < len(q.mu.batches) && now.Sub(q.mu.batches[n].At) >= q.grace {",
		to:   "	for _ = now; n < len(q.mu.batches); {",
		pkg:  "./peer/...", run: "TestCopiesAreDueOnlyAfterTheirGrace|TestHandedOnCopiesWaitForTheirGrace",
	},
	{
		name: "retired-copy-deleted-under-another-placement",
		file: "peer/replicate/hints.go",
		from: "		if b.Gen != v.Gen {",
		to:   "		if false {",
		pkg:  "./peer/replicate", run: "TestHandedOnCopiesWaitForTheirGrace",
	},
	{
		name: "backlog-oldest-only-under-the-counting-view",
		file: "peer/replicate/backlog.go",
		from: "				r.lows.add(e.Seq, oldest)",
		to:   "				_ = oldest",
		pkg:  "./peer/replicate", run: "TestOwedCoversAPartitionGainedAfterCounting|TestOwedCoversASavedCursorWhoseTargetComesLate",
	},
	{
		name: "radix-sort-skips-the-low-byte",
		file: "index/scan_sorted.go",
		from: "	for shift := 32; shift < 56; shift += 8 {",
		to:   "	for shift := 40; shift < 56; shift += 8 {",
		pkg:  "./index", run: "TestSortByIDOrdersAsCompare",
	},
	{
		name: "radix-sort-leaves-ties-in-key-order",
		file: "index/scan_sorted.go",
		from: "		if j-i > 1 {\n			slices.SortFunc(dst[i:j], byID)",
		to:   "		if j-i > 1 && false {\n			slices.SortFunc(dst[i:j], byID)",
		pkg:  "./index", run: "TestSortByIDOrdersAsCompare",
	},
	{
		name: "interleaved-pieces-joined",
		file: "index/scan_sorted.go",
		from: "			joined = false",
		to:   "			joined = true",
		pkg:  "./index", run: "TestSlicesScanAsOneOrderedRun|TestMergeSortedJoinsOrMerges",
	},
	{
		name: "arenas-given-back-before-passing",
		file: "index/scan_sorted.go",
		from: "			err = passSorted(c.recs, opts.Reverse, fn)\n			c.release()\n			return err",
		to:   "			recs := c.recs\n			c.release()\n			err = passSorted(recs, opts.Reverse, fn)\n			return err",
		pkg:  "./index", run: "TestSortedScanDataOutlivesTheNextScan",
	},
	{
		name: "parallel-count-of-one-worker",
		file: "index/scan.go",
		from: "		for _, c := range counts {",
		to:   "		for _, c := range counts[:1] {",
		pkg:  "./index", run: "TestSlicesScanAsOneOrderedRun|TestSealedRunsReadAsLooseRecords",
	},
	{
		name: "memory-limit-never-follows",
		file: "cmd/logmesh/memlimit.go",
		from: "		if l := followedLimit(f.budget, f.live()); l != current {",
		to:   "		if l := followedLimit(f.budget, f.live()); false && l != current {",
		pkg:  "./cmd/logmesh", run: "TestTheLimitFollowsTheLiveHeapAndReturns",
	},
	{
		name: "followed-limit-without-ceiling",
		file: "cmd/logmesh/memlimit.go",
		from: "	return min(max(budget, l), heapCeilingFactor*budget)",
		to:   "	return max(budget, l)",
		pkg:  "./cmd/logmesh", run: "TestFollowedLimitStaysBetweenTheBudgetAndItsCeiling",
	},
	{
		name: "follower-leaves-the-limit-raised",
		file: "cmd/logmesh/memlimit.go",
		from: "	defer f.set(f.budget)\n",
		to:   "",
		pkg:  "./cmd/logmesh", run: "TestTheLimitFollowsTheLiveHeapAndReturns",
	},
}

func main() {
	only := flag.String("only", "", "run only the mutation of this name")
	flag.Parse()
	root, err := os.Getwd()
	if err != nil {
		fatal(err)
	}
	failed := 0
	for _, m := range mutations {
		if *only != "" && m.name != *only {
			continue
		}
		start := time.Now()
		killed, out, err := run(root, m)
		switch {
		case err != nil:
			failed++
			fmt.Printf("%-40s ERROR    %v\n", m.name, err)
		case !killed:
			failed++
			fmt.Printf("%-40s SURVIVED %s -run %s passed with the mutation (%v)\n%s\n", m.name, m.pkg, m.run, time.Since(start).Round(time.Second), tail(out, 30))
		default:
			fmt.Printf("%-40s killed   by %s (%v)\n", m.name, m.run, time.Since(start).Round(time.Second))
		}
	}
	if failed > 0 {
		os.Exit(1)
	}
}

// run applies m to a copy of the module and reports whether its tests failed.
func run(root string, m mutation) (bool, string, error) {
	dir, err := os.MkdirTemp("", "logmesh-mutant-")
	if err != nil {
		return false, "", err
	}
	defer os.RemoveAll(dir)
	if err := copyTree(root, dir); err != nil {
		return false, "", err
	}
	path := filepath.Join(dir, m.file)
	b, err := os.ReadFile(path)
	if err != nil {
		return false, "", err
	}
	if n := strings.Count(string(b), m.from); n != 1 {
		return false, "", fmt.Errorf("%s: the code to mutate appears %d times (want once): update the mutation", m.file, n)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), m.from, m.to, 1)), 0o644); err != nil {
		return false, "", err
	}
	vet := exec.Command("go", "build", "./...")
	vet.Dir = dir
	if out, err := vet.CombinedOutput(); err != nil {
		return false, string(out), fmt.Errorf("the mutant does not build: %v\n%s", err, out)
	}
	cmd := exec.Command("go", "test", "-count=1", "-timeout", "10m", "-run", "^("+m.run+")$", m.pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), m.env...)
	out, err := cmd.CombinedOutput()
	return err != nil, string(out), nil
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && (rel == ".git" || rel == "bin") {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "mutate:", err)
	os.Exit(2)
}
