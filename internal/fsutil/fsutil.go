// Package fsutil holds small file helpers that several packages share.
package fsutil

import (
	"fmt"
	"io"
	"os"
)

// ReadCapped reads the file at path, refusing one of more than max bytes
// (it reads at most max+1, so a huge or endless file costs nothing).
func ReadCapped(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than the %d-byte cap", path, max)
	}
	return b, nil
}
