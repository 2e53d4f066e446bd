//go:build !linux

package runner

import "os"

// CreateShm needs memfd: elsewhere the runner speaks over the socket only.
func CreateShm(int) (*Shm, error) { return nil, ErrNoShm }

// OpenShm needs memfd: elsewhere the runner speaks over the socket only.
func OpenShm(int, int) (*Shm, error) { return nil, ErrNoShm }

// File returns nil: there is no memfd here.
func (s *Shm) File() *os.File { return nil }

// CloseFile does nothing here.
func (s *Shm) CloseFile() {}

// Close does nothing here.
func (s *Shm) Close() error { return nil }
