package node

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"reflect"
	"testing"

	"taobox/chain/consensus"
	"taobox/chain/types"
)

func TestWireRoundTrips(t *testing.T) {
	q := RangeRequest{From: 7, Count: 64}
	if got, err := DecodeRangeRequest(q.Encode()); err != nil || got != q {
		t.Fatalf("range request: %+v %v", got, err)
	}
	bs := []BlockWithCert{{Block: []byte("block one"), Cert: []byte("cert one")}, {Block: []byte("b2"), Cert: []byte("c2")}}
	if got, err := DecodeBlocksResponse(EncodeBlocksResponse(bs)); err != nil || !reflect.DeepEqual(got, bs) {
		t.Fatalf("blocks: %+v %v", got, err)
	}
	hs := [][]byte{[]byte("h1"), []byte("h2")}
	if got, err := DecodeHeadersResponse(EncodeHeadersResponse(hs)); err != nil || !reflect.DeepEqual(got, hs) {
		t.Fatalf("headers: %q %v", got, err)
	}
	fs := []EpochFragment{{Header: []byte("h"), Cert: []byte("c"), NextSet: []byte("s")}}
	if got, err := DecodeEpochProof(EncodeEpochProof(fs)); err != nil || !reflect.DeepEqual(got, fs) {
		t.Fatalf("epoch proof: %+v %v", got, err)
	}
}

func TestWireRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"short range", func() error { _, err := DecodeRangeRequest(make([]byte, 11)); return err }()},
		{"trailing range", func() error { _, err := DecodeRangeRequest(make([]byte, 13)); return err }()},
		{"too many blocks", func() error {
			_, err := DecodeBlocksResponse(EncodeBlocksResponse(make([]BlockWithCert, types.MaxBlocksPerReq+1)))
			return err
		}()},
		{"oversized cert", func() error {
			_, err := DecodeBlocksResponse(EncodeBlocksResponse([]BlockWithCert{{Cert: make([]byte, types.MaxCertificate+1)}}))
			return err
		}()},
		{"too many headers", func() error {
			_, err := DecodeHeadersResponse(EncodeHeadersResponse(make([][]byte, types.MaxHeadersPerReq+1)))
			return err
		}()},
		{"oversized header", func() error {
			_, err := DecodeHeadersResponse(EncodeHeadersResponse([][]byte{make([]byte, types.MaxHeaderSize+1)}))
			return err
		}()},
		{"count past input", func() error { _, err := DecodeEpochProof([]byte{0, 0, 0, 9}); return err }()},
	} {
		if tc.err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func FuzzDecodeRangeRequest(f *testing.F) {
	f.Add(RangeRequest{From: 1, Count: 2}.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeRangeRequest(b)
		if err == nil && !bytes.Equal(q.Encode(), b) {
			t.Fatal("not canonical")
		}
	})
}

func FuzzDecodeBlocksResponse(f *testing.F) {
	f.Add(EncodeBlocksResponse([]BlockWithCert{{Block: []byte("b"), Cert: []byte("c")}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		bs, err := DecodeBlocksResponse(b)
		if err == nil && !bytes.Equal(EncodeBlocksResponse(bs), b) {
			t.Fatal("not canonical")
		}
	})
}

func FuzzDecodeHeadersResponse(f *testing.F) {
	f.Add(EncodeHeadersResponse([][]byte{[]byte("h")}))
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := DecodeHeadersResponse(b)
		if err == nil && !bytes.Equal(EncodeHeadersResponse(hs), b) {
			t.Fatal("not canonical")
		}
	})
}

func FuzzDecodeEpochProof(f *testing.F) {
	f.Add(EncodeEpochProof([]EpochFragment{{Header: []byte("h"), Cert: []byte("c"), NextSet: []byte("s")}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := DecodeEpochProof(b)
		if err != nil {
			return
		}
		if !bytes.Equal(EncodeEpochProof(fs), b) {
			t.Fatal("not canonical")
		}
		_, _ = VerifyEpochProof(types.Hash{1}, 8, 1, []consensus.Validator{{ID: types.AccountID{1}, Stake: 1}}, fs) // must not panic
	})
}

// TestGossipMisbehaviour: what no honest peer sends is refused with
// ErrMisbehaving and changes nothing; requests are served or refused with
// ErrNotFound.
func TestGossipMisbehaviour(t *testing.T) {
	g := bftGenesis(1, 10)
	tn := newTestNet(t, 7)
	key := validatorKey(0)
	n := tn.add(0, bftConfig(t, g, key))
	tn.waitHeight(2, 0)
	chain := n.ChainID()
	vote := consensus.Vote{Type: consensus.Prevote, Height: 1 << 40, Round: 0, BlockID: types.Hash{1}, Validator: types.AccountIDFromPrivateKey(key)}
	vote.Signature = consensus.Ed25519Signer{Key: key}.Sign(vote.SignBytes(chain))
	good, _ := consensus.EncodeMessage(vote)
	forged := vote
	forged.Signature[0] ^= 1
	bad, _ := consensus.EncodeMessage(forged)
	badTx := sign(0, 0, 100, types.Transfer{To: id(1), Amount: tao}, chain)
	badTx.Sig[5] ^= 1
	// A signed proposal whose body carries a transaction its header's
	// TxRoot does not commit to (a relay swapping the body under the id).
	swapped := types.Block{Header: types.Header{Version: types.HeaderVersion, ChainID: chain, Height: 1 << 40},
		Txs: []types.Tx{sign(0, 0, 100, types.Transfer{To: id(1), Amount: tao}, chain)}}
	body := swapped.Encode()
	prop := consensus.Proposal{Height: 1 << 40, POLRound: -1, BlockID: swapped.Hash(), Block: body, Proposer: types.AccountIDFromPrivateKey(key)}
	prop.Signature = consensus.Ed25519Signer{Key: key}.Sign(prop.SignBytes(chain))
	swappedMsg, _ := consensus.EncodeMessage(prop)
	for _, tc := range []struct {
		name    string
		t       types.MsgType
		payload []byte
	}{
		{"oversized vote", types.MsgVote, make([]byte, types.MaxVoteMsg+1)},
		{"garbage vote", types.MsgVote, []byte{2, 1, 2, 3}},
		{"forged vote", types.MsgVote, bad},
		{"vote as proposal", types.MsgProposal, good},
		{"proposal with a swapped body", types.MsgProposal, swappedMsg},
		{"bad tx signature", types.MsgTx, badTx.Encode()},
		{"garbage block", types.MsgBlock, []byte{3, 0, 0}},
		{"request type as gossip", types.ReqBlocks, nil},
	} {
		if err := n.HandleGossip("peer", tc.t, tc.payload); !errors.Is(err, ErrMisbehaving) {
			t.Errorf("%s: HandleGossip = %v, want ErrMisbehaving", tc.name, err)
		}
	}
	// A well-signed vote of a far height is not misbehaviour.
	if err := n.HandleGossip("peer", types.MsgVote, good); err != nil {
		t.Errorf("a valid future vote: %v", err)
	}
	if _, err := n.ServeRequest(t.Context(), types.ReqBlocks, []byte{1}); !errors.Is(err, ErrMisbehaving) {
		t.Errorf("garbage request: %v", err)
	}
	if _, err := n.ServeRequest(t.Context(), types.ReqBlocks, RangeRequest{From: 1 << 40, Count: 1}.Encode()); !errors.Is(err, ErrNotFound) {
		t.Errorf("a future block: %v", err)
	}
	resp, err := n.ServeRequest(t.Context(), types.ReqHeaders, RangeRequest{From: 0, Count: 2}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	hs, err := DecodeHeadersResponse(resp)
	if err != nil || len(hs) != 2 {
		t.Fatalf("headers: %d %v", len(hs), err)
	}
	if h, err := types.DecodeHeader(hs[1]); err != nil || h.Height != 1 {
		t.Fatalf("header 1: %v", err)
	}
	resp, err = n.ServeRequest(t.Context(), types.ReqBlocks, RangeRequest{From: 1, Count: 1}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if bs, err := DecodeBlocksResponse(resp); err != nil || len(bs) != 1 {
		t.Fatalf("blocks: %v", err)
	}
}

// TestFutureMessagesBounded: signed votes and proposals for the next height
// from a key outside the authority set, and for far heights from anyone,
// are neither kept nor counted against the buffer; the next height's
// messages of members are, and proposals only up to maxFutureProposals.
func TestFutureMessagesBounded(t *testing.T) {
	// Two authorities, one running: no block is finalized, so the height
	// stays put while the test sends (with one authority making a block
	// every 50 ms, h+1 became the current height mid-test, where an
	// outsider's vote is an error, not a future message).
	g := bftGenesis(2, 1000)
	tn := newTestNet(t, 11)
	key := validatorKey(0)
	n := tn.add(0, bftConfig(t, g, key))
	chain := n.ChainID()
	n.consMu.Lock()
	h, _, _ := n.cons.Position()
	n.consMu.Unlock()
	outsider := validatorKey(9)
	vote := func(k ed25519.PrivateKey, height uint64, round uint32) []byte {
		v := consensus.Vote{Type: consensus.Prevote, Height: height, Round: round, BlockID: types.Hash{1}, Validator: types.AccountIDFromPrivateKey(k)}
		v.Signature = consensus.Ed25519Signer{Key: k}.Sign(v.SignBytes(chain))
		b, _ := consensus.EncodeMessage(v)
		return b
	}
	for r := range uint32(50) {
		for _, msg := range [][]byte{vote(outsider, h+1, r), vote(key, h+5, r), vote(outsider, h+1<<20, r)} {
			if err := n.HandleGossip("peer", types.MsgVote, msg); err != nil {
				t.Fatalf("HandleGossip: %v", err)
			}
		}
	}
	n.consMu.Lock()
	kept := len(n.future)
	n.consMu.Unlock()
	if kept != 0 {
		t.Fatalf("%d future messages kept from an outsider or far heights, want 0", kept)
	}
}
