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
	bpfLdAbsB  = 0x30 // BPF_LD|BPF_B|BPF_ABS
	bpfLdAbsW  = 0x20 // BPF_LD|BPF_W|BPF_ABS
	bpfAndK    = 0x54 // BPF_ALU|BPF_AND|BPF_K
	bpfRshK    = 0x74 // BPF_ALU|BPF_RSH|BPF_K
	bpfJeqK    = 0x15 // BPF_JMP|BPF_JEQ|BPF_K
	bpfRetK    = 0x06 // BPF_RET|BPF_K
	skfNetOff  = 0xfff00000
	udpHdrLen  = 8 // a UDP socket's filter sees the packet from its UDP header
	bpfAccept  = 0xffffffff
	maxDropIPs = 64 // per address family; more sources drop every Initial
)

// initialFilter returns the program that accepts every packet except QUIC
// Initial packets (long header, type 0: first byte & 0xf0 == 0xc0) that
// come from an address in drop, or from anywhere when all is set (or when
// drop holds more than maxDropIPs addresses of a family). nil means no
// filter.
func initialFilter(all bool, drop []netip.Addr) []bpfInsn {
	var v4, v6 []netip.Addr
	for _, a := range drop {
		if a = a.Unmap(); a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	if !all && len(v4) == 0 && len(v6) == 0 {
		return nil
	}
	if len(v4) > maxDropIPs || len(v6) > maxDropIPs {
		all = true // the jumps over the IPv4 list must fit in 8 bits
	}
	p := []bpfInsn{
		{Code: bpfLdAbsB, K: udpHdrLen}, // A = first byte of the datagram
		{Code: bpfAndK, K: 0xf0},
		{Code: bpfJeqK, K: 0xc0, Jt: 1}, // an Initial: go on
		{Code: bpfRetK, K: bpfAccept},
	}
	if all {
		return append(p, bpfInsn{Code: bpfRetK, K: 0})
	}
	// The IP version, from the network header.
	p = append(p,
		bpfInsn{Code: bpfLdAbsB, K: skfNetOff},
		bpfInsn{Code: bpfRshK, K: 4},
	)
	// IPv4: [jeq 4, else skip the v4 block] ld src; (jeq ip; ret 0)×n; ret accept
	v4Block := 1 + 2*len(v4) + 1
	p = append(p, bpfInsn{Code: bpfJeqK, K: 4, Jf: uint8(v4Block)})
	p = append(p, bpfInsn{Code: bpfLdAbsW, K: skfNetOff + 12})
	for _, a := range v4 {
		b := a.As4()
		p = append(p, bpfInsn{Code: bpfJeqK, K: be32(b[:]), Jf: 1}, bpfInsn{Code: bpfRetK, K: 0})
	}
	p = append(p, bpfInsn{Code: bpfRetK, K: bpfAccept})
	// IPv6: the source address is 4 words at offset 8; each address
	// compares them in turn, any mismatch skipping to the next address.
	p = append(p, bpfInsn{Code: bpfJeqK, K: 6, Jt: 1}, bpfInsn{Code: bpfRetK, K: bpfAccept})
	for _, a := range v6 {
		b := a.As16()
		for w := range 4 {
			p = append(p, bpfInsn{Code: bpfLdAbsW, K: skfNetOff + 8 + uint32(4*w)})
			// On a mismatch skip to the next address: past the rest of
			// this one's (ld, jeq) pairs and its ret.
			p = append(p, bpfInsn{Code: bpfJeqK, K: be32(b[4*w:]), Jf: uint8(2*(3-w) + 1)})
		}
		p = append(p, bpfInsn{Code: bpfRetK, K: 0})
	}
	return append(p, bpfInsn{Code: bpfRetK, K: bpfAccept})
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
