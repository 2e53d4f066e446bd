package node

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"taobox/chain/types"
)

// lyingNet is a follower's network of two peers over one real node's
// ServeRequest: "liar", asked first, corrupts its ReqBlocks answers;
// "honest" does not. It records which peers were reported.
type lyingNet struct {
	src     *Node
	corrupt func(t *testing.T, resp []byte) []byte
	t       *testing.T
	both    bool // "honest" corrupts its answers too

	mu      sync.Mutex
	reports map[string][]error
}

func (l *lyingNet) Broadcast(types.MsgType, []byte) {}

func (l *lyingNet) Request(ctx context.Context, t types.MsgType, payload []byte) ([]byte, error) {
	_, b, err := l.RequestPeer(ctx, t, payload, nil)
	return b, err
}

func (l *lyingNet) RequestPeer(ctx context.Context, t types.MsgType, payload []byte, skip []string) (string, []byte, error) {
	for _, peer := range []string{"liar", "honest"} {
		if slices.Contains(skip, peer) {
			continue
		}
		resp, err := l.src.ServeRequest(ctx, t, payload)
		if err == nil && (peer == "liar" || l.both) && t == types.ReqBlocks {
			resp = l.corrupt(l.t, resp)
		}
		return peer, resp, err
	}
	return "", nil, ErrNotFound
}

func (l *lyingNet) Misbehaved(peer string, why error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reports[peer] = append(l.reports[peer], why)
}

func (l *lyingNet) reported() map[string][]error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return cloneReports(l.reports)
}

func cloneReports(m map[string][]error) map[string][]error {
	out := map[string][]error{}
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

// rewrite decodes a blocks response, lets f change it and encodes it again.
func rewrite(t *testing.T, resp []byte, f func([]BlockWithCert) []BlockWithCert) []byte {
	bs, err := DecodeBlocksResponse(resp)
	if err != nil || len(bs) < 2 {
		t.Errorf("the honest response: %d blocks, %v", len(bs), err)
		return resp
	}
	for i := range bs {
		bs[i].Block, bs[i].Cert = slices.Clone(bs[i].Block), slices.Clone(bs[i].Cert)
	}
	return EncodeBlocksResponse(f(bs))
}

// TestCatchUpReportsLyingPeer: a peer that serves blocks failing
// verification during catch-up is reported (PeerNetwork.Misbehaved) and
// skipped; the follower gets the same heights from another peer and
// catches up. Before, catch-up stopped at the liar and asked it again on
// the next trigger.
func TestCatchUpReportsLyingPeer(t *testing.T) {
	g := bftGenesis(1, 10)
	tn := newTestNet(t, 12)
	src := tn.add(0, bftConfig(t, g, validatorKey(0)))
	tn.waitHeight(6, 0)

	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, resp []byte) []byte
	}{
		{"bad certificate signature", func(t *testing.T, resp []byte) []byte {
			return rewrite(t, resp, func(bs []BlockWithCert) []BlockWithCert {
				for i := range bs {
					bs[i].Cert[len(bs[i].Cert)-1] ^= 1
				}
				return bs
			})
		}},
		{"certificates shifted (wrong linkage)", func(t *testing.T, resp []byte) []byte {
			return rewrite(t, resp, func(bs []BlockWithCert) []BlockWithCert {
				for i := 0; i+1 < len(bs); i++ {
					bs[i].Cert = bs[i+1].Cert
				}
				return bs[:len(bs)-1]
			})
		}},
		{"block not named by its certificate", func(t *testing.T, resp []byte) []byte {
			return rewrite(t, resp, func(bs []BlockWithCert) []BlockWithCert {
				bs[0].Block, bs[1].Block = bs[1].Block, bs[0].Block
				return bs
			})
		}},
		{"undecodable response", func(t *testing.T, resp []byte) []byte { return resp[:len(resp)-3] }},
		{"good block, then a bad one", func(t *testing.T, resp []byte) []byte {
			return rewrite(t, resp, func(bs []BlockWithCert) []BlockWithCert {
				bs[1].Cert[len(bs[1].Cert)-1] ^= 1
				return bs
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := &lyingNet{src: src, corrupt: tc.corrupt, t: t, reports: map[string][]error{}}
			cfg := bftConfig(t, g, nil)
			cfg.Network = ln
			f := openNode(t, cfg)
			target, _ := src.Head()
			f.triggerCatchUp()
			deadline := time.Now().Add(60 * time.Second) // a hung test's bound, not a speed assertion
			for h, _ := f.Head(); h < target; h, _ = f.Head() {
				if time.Now().After(deadline) {
					t.Fatalf("the follower is at %d, not %d: catch-up did not get past the liar (reports %v)", h, target, ln.reported())
				}
				time.Sleep(5 * time.Millisecond)
			}
			checkSameChain(t, target, src, f)
			r := ln.reported()
			if len(r["liar"]) == 0 || len(r["honest"]) != 0 {
				t.Fatalf("reports %v: want the liar reported, the honest peer not", r)
			}
			for _, err := range r["liar"] {
				if !errors.Is(err, ErrMisbehaving) {
					t.Errorf("the report %v does not wrap ErrMisbehaving", err)
				}
			}
		})
	}
}

// When every peer's blocks fail this node's own verification (a forged
// certificate signature here; in life, more likely this node's view of the
// authority set is wrong), catch-up stops without reporting anyone: a node
// must not ban all its peers for its own fault. A self-evident fault (a
// block its certificate does not name) is still reported at once.
func TestCatchUpDoesNotBanForUnprovenFaults(t *testing.T) {
	g := bftGenesis(1, 10)
	tn := newTestNet(t, 12)
	src := tn.add(0, bftConfig(t, g, validatorKey(0)))
	tn.waitHeight(6, 0)
	badSig := func(t *testing.T, resp []byte) []byte {
		return rewrite(t, resp, func(bs []BlockWithCert) []BlockWithCert {
			for i := range bs {
				bs[i].Cert[len(bs[i].Cert)-1] ^= 1
			}
			return bs
		})
	}
	swapped := func(t *testing.T, resp []byte) []byte {
		return rewrite(t, resp, func(bs []BlockWithCert) []BlockWithCert {
			bs[0].Block, bs[1].Block = bs[1].Block, bs[0].Block
			return bs
		})
	}
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, resp []byte) []byte
		want    int // peers reported
	}{
		{"unverifiable certificates from every peer", badSig, 0},
		{"blocks not named by their certificates from every peer", swapped, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := &lyingNet{src: src, corrupt: tc.corrupt, t: t, both: true, reports: map[string][]error{}}
			cfg := bftConfig(t, g, nil)
			cfg.Network = ln
			f := openNode(t, cfg)
			f.catchUp() // synchronously: returns once both peers were skipped
			if h, _ := f.Head(); h != 0 {
				t.Fatalf("the follower committed up to %d from corrupt answers", h)
			}
			if r := ln.reported(); len(r) != tc.want {
				t.Fatalf("reports %v: want %d peers reported", r, tc.want)
			}
		})
	}
}
