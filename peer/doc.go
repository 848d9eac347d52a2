// Package peer is one running logmesh node. It opens the store (index),
// serves the HTTP API and the syslog listeners, assigns record IDs, and — in
// a cluster — joins the membership (gossip), replicates and runs
// anti-entropy. One Close stops everything in reverse order of start.
package peer
