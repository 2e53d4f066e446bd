package runner

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// CreateShm creates the parent's region: a memfd (close-on-exec, sealed
// against shrinking and growing) of size bytes, mapped shared. Its pages
// are allocated when first written. File returns the memfd to hand to the
// runner (exec.Cmd.ExtraFiles); CloseFile drops the parent's descriptor
// once the runner has it.
func CreateShm(size int) (*Shm, error) {
	if size <= 0 || size%2 != 0 || size > MaxShmSize {
		return nil, fmt.Errorf("runner: shared memory of %d bytes: want an even size in (0, %d]", size, int64(MaxShmSize))
	}
	fd, err := unix.MemfdCreate("taobox-runner", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("runner: memfd_create: %w (the runner falls back to the socket)", err)
	}
	f := os.NewFile(uintptr(fd), "taobox-runner-shm")
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		f.Close()
		return nil, fmt.Errorf("runner: sizing shared memory to %d bytes: %w", size, err)
	}
	// The runner maps it too: neither side may shrink it under the other
	// (an access past the end of a memfd is SIGBUS).
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		f.Close()
		return nil, fmt.Errorf("runner: sealing shared memory: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("runner: mapping %d bytes of shared memory: %w", size, err)
	}
	return &Shm{mem: mem, file: f}, nil
}

// File returns the region's memfd (nil after CloseFile).
func (s *Shm) File() *os.File { return s.file }

// CloseFile closes the memfd; the mapping stays.
func (s *Shm) CloseFile() {
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
}

// OpenShm maps the region the parent handed over as descriptor fd (the
// runner's --shm-fd) of size bytes (--shm-size). It takes fd: the
// descriptor is closed once mapped. A file smaller than size is refused
// (touching a page past its end would be SIGBUS).
func OpenShm(fd, size int) (*Shm, error) {
	if fd < 0 {
		return nil, fmt.Errorf("runner: --shm-fd %d is not a descriptor", fd)
	}
	defer unix.Close(fd)
	if size <= 0 || size%2 != 0 || size > MaxShmSize {
		return nil, fmt.Errorf("runner: --shm-size %d: want an even size in (0, %d]", size, int64(MaxShmSize))
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("runner: --shm-fd %d: %w (was the runner started by taobox?)", fd, err)
	}
	if st.Size < int64(size) {
		return nil, fmt.Errorf("runner: --shm-fd %d holds %d bytes, --shm-size says %d", fd, st.Size, size)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("runner: mapping --shm-fd %d: %w", fd, err)
	}
	return &Shm{mem: mem}, nil
}

// Close unmaps the region and closes the memfd if still open. Nothing may
// read or write the region afterwards.
func (s *Shm) Close() error {
	if s == nil {
		return nil
	}
	s.CloseFile()
	if s.mem == nil {
		return nil
	}
	err := unix.Munmap(s.mem)
	s.mem = nil
	return err
}
