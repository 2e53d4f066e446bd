package miner

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// runBPF interprets the classic BPF subset initialFilter emits over a
// packet seen as a UDP socket filter sees it: net is the IP header (from
// SKF_NET_OFF), udp the UDP header and payload. It returns the filter's
// verdict (0: drop) and fails the test on an out-of-range jump or an
// unknown opcode.
func runBPF(t *testing.T, prog []bpfInsn, net, udp []byte) uint32 {
	t.Helper()
	load := func(k uint32, n int) (uint32, bool) {
		buf, off := udp, int(k)
		if k >= skfNetOff {
			buf, off = net, int(k-skfNetOff)
		}
		if off+n > len(buf) {
			return 0, false
		}
		v := uint32(0)
		for _, b := range buf[off : off+n] {
			v = v<<8 | uint32(b)
		}
		return v, true
	}
	var a uint32
	for pc := 0; ; pc++ {
		if pc >= len(prog) {
			t.Fatalf("ran off the end of a %d-instruction program", len(prog))
		}
		in := prog[pc]
		switch in.Code {
		case bpfLdAbsB, bpfLdAbsW:
			n := 1
			if in.Code == bpfLdAbsW {
				n = 4
			}
			v, ok := load(in.K, n)
			if !ok {
				return 0 // the kernel drops a packet a load runs past
			}
			a = v
		case bpfAndK:
			a &= in.K
		case bpfRshK:
			a >>= in.K
		case bpfJeqK:
			if a == in.K {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case bpfRetK:
			return in.K
		default:
			t.Fatalf("opcode %#x", in.Code)
		}
	}
}

func ipHeader(src netip.Addr) []byte {
	if src.Is4() {
		h := make([]byte, 20)
		h[0] = 0x45
		b := src.As4()
		copy(h[12:], b[:])
		return h
	}
	h := make([]byte, 40)
	h[0] = 0x60
	b := src.As16()
	copy(h[8:], b[:])
	return h
}

// initialFilter's program, run by an interpreter over every held and
// exempt source and near misses (a bit off in each of an IPv6 prefix's two
// words; the same /64 with another host part), with every kind of first
// byte: it drops exactly the Initial packets from held sources (or from
// all) that are not exempt, whatever the lists' sizes up to their limits.
func TestInitialFilterProgram(t *testing.T) {
	if initialFilter(false, nil, nil) != nil || initialFilter(false, nil, []netip.Addr{netip.MustParseAddr("10.0.0.1")}) != nil {
		t.Fatal("a program with nothing to drop")
	}
	var many []netip.Addr
	for i := range maxDropIPs + 1 {
		many = append(many, netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
	}
	if got := initialFilter(false, many, nil); !slices.Equal(got, initialFilter(true, nil, nil)) {
		t.Fatalf("more than maxDropIPs sources: %v, want the drop-all program", got)
	}
	r := rand.New(rand.NewPCG(1, 2))
	randAddr := func(v4 bool) netip.Addr {
		if v4 {
			return netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		}
		var b [16]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if b[0] == 0 { // keep clear of IPv4-mapped
			b[0] = 0x20
		}
		return netip.AddrFrom16(b)
	}
	in := func(set []netip.Addr, a netip.Addr) bool {
		return slices.ContainsFunc(set, func(h netip.Addr) bool { return sourceKey(h) == sourceKey(a) })
	}
	firsts := []byte{0xc0, 0xc3, 0xcf, 0xd0, 0xe0, 0xf0, 0x40, 0x41, 0x00, 0x80, 0xbf}
	for _, n := range []int{0, 1, 2, 7, maxDropIPs - 1} { // n IPv4 + 1 mapped, n IPv6
		for _, ne := range []int{0, 3, maxExemptIPs} {
			for _, all := range []bool{false, true} {
				var held, exempt []netip.Addr
				for i := range n {
					held = append(held, randAddr(true), randAddr(false))
					if i == 0 {
						held = append(held, netip.MustParseAddr("::ffff:192.0.2.1")) // mapped: held as IPv4
					}
				}
				for range ne {
					exempt = append(exempt, randAddr(true), randAddr(false))
				}
				if n > 0 && ne > 0 { // exempt wins over held
					exempt = append(exempt[:len(exempt)-2], held[0], held[1])
				}
				prog := initialFilter(all, held, exempt)
				if len(held) == 0 && !all {
					if prog != nil {
						t.Fatal("a program with nothing to drop")
					}
					continue
				}
				probes := slices.Concat(held, exempt)
				for _, a := range probes[:len(probes):len(probes)] {
					if a.Is6() && !a.Is4In6() {
						b := a.As16()
						for w := range 2 { // a near miss in each prefix word
							c := b
							c[4*w+3] ^= 1
							probes = append(probes, netip.AddrFrom16(c))
						}
						c := b
						c[15] ^= 0xff // same /64, another host
						probes = append(probes, netip.AddrFrom16(c))
					}
				}
				for range 20 {
					probes = append(probes, randAddr(true), randAddr(false))
				}
				for _, src := range probes {
					src = src.Unmap()
					dropped := (all || in(held, src)) && !in(exempt, src)
					for _, first := range firsts {
						udp := append(make([]byte, udpHdrLen), first, 0, 0, 0, 1)
						got := runBPF(t, prog, ipHeader(src), udp)
						want := uint32(bpfAccept)
						if first&0xf0 == 0xc0 && dropped {
							want = 0
						}
						if got != want {
							t.Fatalf("n=%d exempt=%d all=%v: first byte %#x from %v (held %v, exempt %v): verdict %#x, want %#x",
								n, ne, all, first, src, in(held, src), in(exempt, src), got, want)
						}
					}
				}
				// An empty datagram: the load runs past it and the kernel drops it.
				if got := runBPF(t, prog, ipHeader(probes[len(probes)-1]), make([]byte, udpHdrLen)); got != 0 {
					t.Fatalf("empty datagram: %#x", got)
				}
				if len(prog) > 292 {
					t.Fatalf("%d instructions", len(prog))
				}
			}
		}
	}
}
