// Package chaos tests logmesh the way Jepsen tests databases: a workload
// writes unique records through several peers and transports while a
// nemesis partitions the network, kills, freezes and slows peers on a seeded,
// replayable schedule; after the faults heal, a checker with Jepsen's set-full
// semantics decides whether anything acknowledged was lost, duplicated or
// invented, and whether every replica converged.
//
// The same scenarios run at three levels (see docs/testing.md): in process
// over the fault network of testutil/faultnet (make test), as real processes
// in network namespaces with nftables partitions (make test-faults), and as
// Docker containers (make test-docker).
package chaos
