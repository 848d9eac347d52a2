//go:build linux

package index

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

const pageOutSupported = true

// fileResidentBytes returns how much file-backed memory the process has
// resident (the "shared" field of /proc/self/statm: mapped files, shared
// memory and the executable's own text).
func fileResidentBytes() (int64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, fmt.Errorf("read statm: %w", err)
	}
	f := bytes.Fields(b)
	if len(f) < 3 {
		return 0, fmt.Errorf("statm has %d fields", len(f))
	}
	pages, err := strconv.ParseInt(string(f[2]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("statm shared pages: %w", err)
	}
	return pages * int64(os.Getpagesize()), nil
}

// tableMapping is one table file of the store mapped in this process.
type tableMapping struct {
	start, end, rss uint64
	vlog            bool // a value-log file, not a table
}

// tableMappings lists the table and value-log files whose paths begin with prefix mapped
// in this process, with their resident bytes, from /proc/self/smaps.
func tableMappings(prefix string) ([]tableMapping, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, fmt.Errorf("read smaps: %w", err)
	}
	defer f.Close()
	var maps []tableMapping
	cur := -1 // index in maps of the table mapping whose fields follow
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if rest, ok := bytes.CutPrefix(line, []byte("Rss:")); ok {
			if cur >= 0 {
				kb, err := strconv.ParseUint(string(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte(" kB"))), 10, 64)
				if err == nil {
					maps[cur].rss = kb << 10
				}
			}
			continue
		}
		// a mapping's header: start-end perms offset dev inode [path];
		// field lines ("Size:", ...) have no '-' before their first space
		sp := bytes.IndexByte(line, ' ')
		dash := bytes.IndexByte(line, '-')
		if sp < 0 || dash < 0 || dash > sp {
			continue
		}
		cur = -1
		path := line[bytes.LastIndexByte(line, ' ')+1:]
		if !(bytes.HasSuffix(path, []byte(".sst")) || bytes.HasSuffix(path, []byte(".vlog"))) || !bytes.HasPrefix(path, []byte(prefix)) {
			continue
		}
		start, err1 := strconv.ParseUint(string(line[:dash]), 16, 64)
		end, err2 := strconv.ParseUint(string(line[dash+1:sp]), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		maps = append(maps, tableMapping{start: start, end: end, vlog: bytes.HasSuffix(path, []byte(".vlog"))})
		cur = len(maps) - 1
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read smaps: %w", err)
	}
	return maps, nil
}

// pageOutTables asks the kernel to reclaim resident pages of the table files
// of the store whose paths begin with prefix, mapped in this process
// (MADV_PAGEOUT), until about excess bytes are gone: tables with the most
// pages resident first. Those are the ones read or written through, mostly
// (a fresh table is wholly resident, so is one a scan has passed), while the
// table a query or compaction is in the middle of has few; paging the
// finished ones out first spares the reads in progress.
//
// MADV_PAGEOUT is a hint that never changes what memory holds: should a
// listed range be unmapped and reused by another mapping before the call,
// that mapping's pages are at worst read in again (or, anonymous without
// swap, left alone). It returns the mappings advised.
func pageOutTables(prefix string, excess int64) (int, error) {
	maps, err := tableMappings(prefix)
	if err != nil {
		return 0, err
	}
	slices.SortFunc(maps, func(a, b tableMapping) int { return cmp.Compare(b.rss, a.rss) })
	n := 0
	for _, m := range maps {
		if excess <= 0 || m.rss == 0 {
			break
		}
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), unix.MADV_PAGEOUT)
		switch errno {
		case 0:
			n++
			excess -= int64(m.rss)
		case unix.ENOMEM: // unmapped since the listing: nothing to do
		default:
			return n, fmt.Errorf("madvise pageout: %w", errno)
		}
	}
	return n, nil
}
