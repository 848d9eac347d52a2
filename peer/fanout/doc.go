// Package fanout answers a query from the whole cluster and says honestly
// how much of it the answer covers.
//
// Each partition is read from one owner that holds it complete (package
// repair), preferring this peer, then the least loaded; every readable peer
// (alive or suspect) is also asked for the partitions it holds without
// owning them (records not yet handed over), and for the records it has not
// yet delivered to the owner chosen for each of its other partitions (its
// replication backlog and debts, package replicate). The ordered answers are
// merged with a heap and repeated IDs dropped.
//
// The answer is full only when every partition was read from a complete
// owner and every peer that may hold records not yet on their owners was
// read. A member that could not be read (failed, unreachable, answering an
// error) holds nothing unique only if what it last published says that
// everything it received before the end of the query's range is on every
// owner (its delivered-through time, a gossip tag); otherwise the answer is
// partial and names it (X-Logmesh-Unread), and partitions without a usable
// complete owner are named too (X-Logmesh-Missing).
package fanout
