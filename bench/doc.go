// Package bench measures logmesh against baselines run on the same machine in
// the same run, and reports ratios (this machine is shared and noisy, so
// absolute figures alone mean little). `logmesh bench` and `make bench` run it.
package bench
