//go:build !linux

package index

const pageOutSupported = false

func fileResidentBytes() (int64, error) { return 0, nil }

func pageOutTables(string, int64) (int, error) { return 0, nil }

type tableMapping struct {
	start, end, rss uint64
	vlog            bool
}

func tableMappings(string) ([]tableMapping, error) { return nil, nil }
