// Package gossip is logmesh's membership: who is in the cluster and in what
// state, built on HashiCorp Serf (SWIM failure detection with Lifeguard,
// gossip, push/pull anti-entropy of the member list).
//
// It carries membership and small metadata only (tags: API address,
// protocol version); log records never travel over gossip.
//
// On top of Serf it adds what a log store's operators need:
//   - joining retries the seeds with backoff until one answers, so a peer
//     started before its seeds still joins;
//   - a peer keeps re-joining its seeds (and the last addresses of members it
//     lost) whenever it sees fewer alive members than it has known, so a healed
//     partition always merges back, even after Serf has given up reconnecting;
//   - a view with alive / suspect / failed / left / leaving states (suspect
//     comes from memberlist's suspicion state, which Serf does not expose) and
//     events for every change, delivered without ever blocking the protocol.
package gossip
