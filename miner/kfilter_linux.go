//go:build linux

package miner

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// initialDropper keeps initialFilter's program on the miner's UDP socket
// up to date with the holds admitHandshake asks for, and removes it when
// they expire. Safe for concurrent use; a nil *initialDropper does nothing.
type initialDropper struct {
	rc  syscall.RawConn
	log *slog.Logger

	mu        sync.Mutex
	all       time.Time                // drop every Initial until then
	ips       map[netip.Addr]time.Time // drop Initials from these until then
	timer     *time.Timer
	installed bool
	broken    bool // the kernel refused the filter: refusals only
	closed    bool
}

// newInitialDropper returns a dropper for conn's socket, or nil when conn
// is not a socket (a test double, a wrapped conn).
func newInitialDropper(conn net.PacketConn, log *slog.Logger) *initialDropper {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &initialDropper{rc: rc, log: log, ips: map[netip.Addr]time.Time{}}
}

// hold drops Initial packets until until: from ip, or from every source
// when ip is the zero Addr. It reports whether the filter changed (a new
// source or the whole socket; an extension alone changes nothing).
func (d *initialDropper) hold(ip netip.Addr, until, now time.Time) bool {
	if d == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.broken || d.closed {
		return false
	}
	changed := false
	switch old, ok := d.ips[ip]; {
	case !ip.IsValid():
		changed = !d.all.After(now)
		d.all = later(d.all, until)
	case ok:
		d.ips[ip] = later(old, until)
	case d.count(ip.Unmap().Is4()) >= maxDropIPs:
		// More sources than the program holds: a spread-out flood.
		changed = !d.all.After(now)
		d.all = later(d.all, until)
	default:
		d.ips[ip] = until
		changed = !d.all.After(now)
	}
	if changed {
		d.installLocked(now)
	}
	return changed
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (d *initialDropper) count(v4 bool) int {
	n := 0
	for a := range d.ips {
		if a.Unmap().Is4() == v4 {
			n++
		}
	}
	return n
}

// installLocked drops expired holds, installs the program for the rest (or
// removes the filter) and arms the timer for the next expiry.
func (d *initialDropper) installLocked(now time.Time) {
	next := time.Time{}
	for a, t := range d.ips {
		if !t.After(now) {
			delete(d.ips, a)
		} else if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	all := d.all.After(now)
	if all && (next.IsZero() || d.all.Before(next)) {
		next = d.all
	}
	prog := initialFilter(all, sortedAddrs(d.ips))
	if err := d.setLocked(prog); err != nil {
		d.broken = true
		d.log.Warn("cannot drop QUIC Initial packets in the kernel; refused connections cost a reply each", "err", err)
		return
	}
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if !next.IsZero() {
		d.timer = time.AfterFunc(next.Sub(now), d.expire)
	}
}

func (d *initialDropper) expire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed && !d.broken {
		d.installLocked(time.Now())
	}
}

// setLocked attaches prog to the socket (replacing the filter there), or
// detaches the filter when prog is nil.
func (d *initialDropper) setLocked(prog []bpfInsn) error {
	if prog == nil && !d.installed {
		return nil
	}
	var serr error
	err := d.rc.Control(func(fd uintptr) {
		if prog == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0)
			return
		}
		f := make([]unix.SockFilter, len(prog))
		for i, in := range prog {
			f[i] = unix.SockFilter{Code: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
		}
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
			&unix.SockFprog{Len: uint16(len(f)), Filter: (*unix.SockFilter)(unsafe.Pointer(&f[0]))})
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("setsockopt(SO_%s_FILTER): %w", map[bool]string{true: "DETACH", false: "ATTACH"}[prog == nil], err)
	}
	d.installed = prog != nil
	return nil
}

// close removes the filter and stops the timer.
func (d *initialDropper) close() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.timer != nil {
		d.timer.Stop()
	}
	if d.installed && !d.broken {
		d.setLocked(nil)
	}
}

// dropping reports what the filter drops now: every Initial, or those of
// how many sources.
func (d *initialDropper) dropping(now time.Time) (all bool, sources int) {
	if d == nil {
		return false, 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range d.ips {
		if t.After(now) {
			sources++
		}
	}
	return d.installed && d.all.After(now), sources
}
