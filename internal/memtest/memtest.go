// Package memtest reads the process's memory for the tests that check
// that repeated work does not make it grow.
package memtest

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// RSS returns the resident set size of the process in bytes, from
// /proc/self/statm; the test is skipped where there is no /proc.
func RSS(t testing.TB) int64 {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	fields := strings.Fields(string(raw))
	if len(fields) < 2 {
		t.Fatalf("/proc/self/statm holds %q, want at least 2 fields", raw)
	}
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		t.Fatalf("/proc/self/statm: %v", err)
	}
	return pages * int64(os.Getpagesize())
}
