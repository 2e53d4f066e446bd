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
	rc      syscall.RawConn
	log     *slog.Logger
	allHold time.Duration // the hold on every source when the held sources overflow

	mu        sync.Mutex
	all       time.Time                // drop every Initial until then
	ips       map[netip.Addr]time.Time // drop Initials from these sources (sourceKey) until then
	exempt    map[netip.Addr]time.Time // never drop these sources' Initials until then
	timer     *time.Timer
	installed bool
	broken    bool // the kernel refused the filter: refusals only
	closed    bool
}

// newInitialDropper returns a dropper for conn's socket, or nil when conn
// is not a socket (a test double, a wrapped conn). allHold is how long
// every source is held when more sources are held than the program takes.
func newInitialDropper(conn net.PacketConn, log *slog.Logger, allHold time.Duration) *initialDropper {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &initialDropper{rc: rc, log: log, allHold: allHold, ips: map[netip.Addr]time.Time{}, exempt: map[netip.Addr]time.Time{}}
}

// hold drops Initial packets until until: from ip's source (sourceKey), or
// from every source when ip is the zero Addr. It reports whether the
// filter changed (a new source or the whole socket; an extension alone
// changes nothing).
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
	key := sourceKey(ip)
	switch old, ok := d.ips[key]; {
	case !ip.IsValid():
		changed = !d.all.After(now)
		d.all = later(d.all, until)
	case ok:
		d.ips[key] = later(old, until)
	case count(d.ips, key.Is4(), now) >= maxDropIPs:
		// More sources than the program holds: a spread-out flood.
		changed = !d.all.After(now)
		d.all = later(d.all, now.Add(d.allHold))
	default:
		d.ips[key] = until
		changed = !d.all.After(now)
	}
	if changed {
		d.installLocked(now)
	}
	return changed
}

// exemptFrom keeps ip's source out of every hold until until (a validator
// the miner served). When the exempt list of its family is full, the
// entry that expires first makes room. The filter is reinstalled only if
// one is installed and the source is new.
func (d *initialDropper) exemptFrom(ip netip.Addr, until, now time.Time) {
	if d == nil || !ip.IsValid() {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.broken || d.closed {
		return
	}
	key := sourceKey(ip)
	if old, ok := d.exempt[key]; ok && old.After(now) {
		d.exempt[key] = later(old, until)
		return
	}
	if count(d.exempt, key.Is4(), now) >= maxExemptIPs {
		var first netip.Addr
		for a, t := range d.exempt {
			if a.Is4() == key.Is4() && (!first.IsValid() || t.Before(d.exempt[first])) {
				first = a
			}
		}
		delete(d.exempt, first)
	}
	d.exempt[key] = until
	if d.installed {
		d.installLocked(now)
	}
}

// count returns the live entries of m of one family.
func count(m map[netip.Addr]time.Time, v4 bool, now time.Time) int {
	n := 0
	for a, t := range m {
		if a.Is4() == v4 && t.After(now) {
			n++
		}
	}
	return n
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
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
	for a, t := range d.exempt {
		if !t.After(now) {
			delete(d.exempt, a)
		}
	}
	prog := initialFilter(all, sortedAddrs(d.ips), sortedAddrs(d.exempt))
	err := d.setLocked(prog)
	if err != nil && prog != nil && d.installed {
		// The kernel charges the old program and the new one together
		// while it swaps them: detach, then attach alone.
		if err = d.setLocked(nil); err == nil {
			err = d.setLocked(prog)
		}
	}
	if err != nil {
		// Leave no filter behind (a stale one could drop everyone's
		// Initials for good): detach, and stop filtering.
		d.broken = true
		derr := d.setLocked(nil)
		d.installed = false
		d.log.Warn("cannot drop QUIC Initial packets in the kernel; refused connections cost a reply each", "err", err, "detach_err", derr)
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
	if prog == nil && !d.installed && !d.broken {
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
	if d.installed {
		d.setLocked(nil)
	}
}

// dropping reports what the installed filter drops now: every Initial,
// or those of how many sources.
func (d *initialDropper) dropping(now time.Time) (all bool, sources int) {
	if d == nil {
		return false, 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.installed {
		return false, 0
	}
	if d.all.After(now) {
		return true, 0
	}
	for _, t := range d.ips {
		if t.After(now) {
			sources++
		}
	}
	return false, sources
}
