package miner

// Dropping QUIC Initial packets in the kernel. A connection the miner
// refuses over its handshake rate (admitHandshake) still costs it a
// packet read, a header parse, Initial keys and a CONNECTION_REFUSED
// written back: measured at about a third of the miner's CPU under a
// 10,000-connection flood (TestJunkFlood's profile). So when it refuses
// one, the miner also installs a classic BPF filter on its UDP socket that
// drops Initial packets — from that source IP for a while, or from every
// source while the global rate is spent — before they reach the process.
// Established connections (short-header packets) and handshakes already
// under way (Handshake packets) pass; a dropped client retransmits its
// Initial and gets in once the hold ends, when the rate allows.

import (
	"net/netip"
	"slices"
)

// bpfInsn is one classic BPF instruction (struct sock_filter).
type bpfInsn struct {
	Code   uint16
	Jt, Jf uint8
	K      uint32
}

// Classic BPF opcodes (linux/filter.h) and the kernel's offset of the
// network header for socket filters (SKF_NET_OFF).
const (
	bpfLdAbsB = 0x30 // BPF_LD|BPF_B|BPF_ABS
	bpfLdAbsW = 0x20 // BPF_LD|BPF_W|BPF_ABS
	bpfAndK   = 0x54 // BPF_ALU|BPF_AND|BPF_K
	bpfRshK   = 0x74 // BPF_ALU|BPF_RSH|BPF_K
	bpfJeqK   = 0x15 // BPF_JMP|BPF_JEQ|BPF_K
	bpfRetK   = 0x06 // BPF_RET|BPF_K
	skfNetOff = 0xfff00000
	udpHdrLen = 8 // a UDP socket's filter sees the packet from its UDP header
	bpfAccept = 0xffffffff
)

// The lists' limits, per address family. They keep the program's jumps in
// 8 bits and its size (at most 292 instructions, about 9 KB of socket
// option memory, which the kernel charges twice while one program replaces
// another) under the 20 KiB optmem_max of older kernels. More held sources
// than fit hold every source instead; when the exempt list is full, the
// entry that expires first makes room.
const (
	maxDropIPs   = 32
	maxExemptIPs = 8
)

// initialFilter returns the program that accepts every packet except QUIC
// v1 Initial packets (long header, type 0: first byte & 0xf0 == 0xc0; the
// miner serves QUIC v1 only, so other versions get a cheap version
// negotiation) that come from a source in drop, or from anywhere when all
// is set (or when drop holds more than maxDropIPs sources of a family) —
// except from the sources in exempt, which are never dropped (validators
// that were served lately). Sources are IPv4 addresses, or IPv6 /64
// prefixes (the address with its last 64 bits zero: sourceKey). nil
// means no filter.
func initialFilter(all bool, drop, exempt []netip.Addr) []bpfInsn {
	d4, d6 := splitFamilies(drop)
	e4, e6 := splitFamilies(exempt)
	if !all && len(d4) == 0 && len(d6) == 0 {
		return nil
	}
	if len(d4) > maxDropIPs || len(d6) > maxDropIPs {
		all, d4, d6 = true, nil, nil
	}
	e4, e6 = e4[:min(len(e4), maxExemptIPs)], e6[:min(len(e6), maxExemptIPs)]
	if all {
		d4, d6 = nil, nil
	}
	p := []bpfInsn{
		{Code: bpfLdAbsB, K: udpHdrLen}, // A = first byte of the datagram
		{Code: bpfAndK, K: 0xf0},
		{Code: bpfJeqK, K: 0xc0, Jt: 1}, // an Initial: go on
		{Code: bpfRetK, K: bpfAccept},
	}
	if all && len(e4) == 0 && len(e6) == 0 {
		return append(p, bpfInsn{Code: bpfRetK, K: 0})
	}
	// The verdict when no listed source matched.
	var rest uint32 = bpfAccept
	if all {
		rest = 0
	}
	// The IP version, from the network header.
	p = append(p,
		bpfInsn{Code: bpfLdAbsB, K: skfNetOff},
		bpfInsn{Code: bpfRshK, K: 4},
	)
	// IPv4: jeq 4 (else skip the block); ld src; exempt pairs (jeq ip;
	// ret accept); drop pairs (jeq ip; ret 0); ret rest.
	v4Block := 1 + 2*len(e4) + 2*len(d4) + 1
	p = append(p, bpfInsn{Code: bpfJeqK, K: 4, Jf: uint8(v4Block)})
	p = append(p, bpfInsn{Code: bpfLdAbsW, K: skfNetOff + 12})
	for _, l := range []struct {
		as      []netip.Addr
		verdict uint32
	}{{e4, bpfAccept}, {d4, 0}} {
		for _, a := range l.as {
			b := a.As4()
			p = append(p, bpfInsn{Code: bpfJeqK, K: be32(b[:]), Jf: 1}, bpfInsn{Code: bpfRetK, K: l.verdict})
		}
	}
	p = append(p, bpfInsn{Code: bpfRetK, K: rest})
	// IPv6 (anything else is accepted): the /64 of the source address is
	// the 2 words at offset 8; each listed prefix compares them in turn, a
	// mismatch skipping to the next prefix.
	p = append(p, bpfInsn{Code: bpfJeqK, K: 6, Jt: 1}, bpfInsn{Code: bpfRetK, K: bpfAccept})
	for _, l := range []struct {
		as      []netip.Addr
		verdict uint32
	}{{e6, bpfAccept}, {d6, 0}} {
		for _, a := range l.as {
			b := a.As16()
			p = append(p,
				bpfInsn{Code: bpfLdAbsW, K: skfNetOff + 8},
				bpfInsn{Code: bpfJeqK, K: be32(b[0:]), Jf: 3},
				bpfInsn{Code: bpfLdAbsW, K: skfNetOff + 12},
				bpfInsn{Code: bpfJeqK, K: be32(b[4:]), Jf: 1},
				bpfInsn{Code: bpfRetK, K: l.verdict})
		}
	}
	return append(p, bpfInsn{Code: bpfRetK, K: rest})
}

// splitFamilies splits sources into IPv4 addresses and IPv6 prefixes.
func splitFamilies(as []netip.Addr) (v4, v6 []netip.Addr) {
	for _, a := range as {
		if a = sourceKey(a); a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	return v4, v6
}

// sourceKey is what the handshake limits and the filter count as one
// source: an IPv4 address, or the /64 of an IPv6 address (an IPv6 host
// has a whole /64 to send from).
func sourceKey(a netip.Addr) netip.Addr {
	if a = a.Unmap(); a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// sortedAddrs returns the keys of m in order (a stable program for the
// same set).
func sortedAddrs[V any](m map[netip.Addr]V) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}
