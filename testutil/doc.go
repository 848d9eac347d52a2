// Package testutil holds what logmesh's tests share: wait-with-deadline
// helpers, free ports, the logmesh binary built once per test process, and
// peers run as real processes (for signals and crashes). It is imported only
// by tests and test binaries.
package testutil
