//go:build !linux

package index

const pageOutSupported = false

func fileResidentBytes() (int64, error) { return 0, nil }

func pageOutTables(string, int64) (int, error) { return 0, nil }
