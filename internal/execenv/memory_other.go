//go:build !linux

package execenv

import "os"

// limitMemory is a no-op where the OS offers no per-process data limit
// lambdad can set from outside.
func limitMemory(pid, mb int) error { return nil }

func openStatus(pid int) (*os.File, error) { return nil, os.ErrNotExist }

func peakRSS(f *os.File, buf []byte) (int64, bool) { return 0, false }
