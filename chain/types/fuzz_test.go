package types

import (
	"bytes"
	"testing"
)

// Each fuzzer checks that a decoder never panics and that whatever it
// accepts is canonical: encoding the result gives back the input exactly.

func FuzzDecodeTx(f *testing.F) {
	for _, tx := range sampleTxs() {
		f.Add(tx.Encode())
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := DecodeTx(b)
		if err != nil {
			return
		}
		if enc := tx.Encode(); !bytes.Equal(enc, b) {
			t.Fatalf("not canonical:\n in  %x\n out %x", b, enc)
		}
		if err := tx.Validate(); err != nil {
			t.Fatalf("decoded tx fails Validate: %v", err)
		}
		_ = tx.Verify(testChain) // must not panic
	})
}

func FuzzDecodeBlock(f *testing.F) {
	blk := sampleBlock()
	f.Add(blk.Encode())
	for i := range blk.Txs {
		one := Block{Header: blk.Header, Txs: blk.Txs[i : i+1]}
		f.Add(one.Encode())
	}
	f.Add((&Block{Header: sampleHeader()}).Encode())
	f.Add((&Block{Header: sampleHeader(), LastCommit: []byte("a certificate"), Txs: blk.Txs[:1]}).Encode())
	f.Add((&Block{Header: sampleHeader(), Txs: blk.Txs[:1], Evidence: [][]byte{{1, 2}, []byte("evidence")}}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		blk, err := DecodeBlock(b)
		if err != nil {
			return
		}
		if enc := blk.Encode(); !bytes.Equal(enc, b) {
			t.Fatalf("not canonical:\n in  %x\n out %x", b, enc)
		}
		_ = TxRoot(blk.Txs)
		_ = EvidenceRoot(blk.Evidence)
	})
}

func FuzzDecodeHeader(f *testing.F) {
	h := sampleBlock().Header
	f.Add(h.Encode())
	h = sampleHeader()
	f.Add(h.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		if err != nil {
			return
		}
		if enc := h.Encode(); !bytes.Equal(enc, b) {
			t.Fatalf("not canonical:\n in  %x\n out %x", b, enc)
		}
		_ = VerifyHeader(h) // must not panic
	})
}

func FuzzDecodeEvents(f *testing.F) {
	evs := sampleEvents()
	f.Add(EncodeEvents(evs))
	for i := range evs {
		f.Add(EncodeEvents(evs[i : i+1]))
	}
	f.Add(EncodeEvents(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := DecodeEvents(b)
		if err != nil {
			return
		}
		if enc := EncodeEvents(evs); !bytes.Equal(enc, b) {
			t.Fatalf("not canonical:\n in  %x\n out %x", b, enc)
		}
		_ = EventsRoot(evs)
	})
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{aliceAddr, "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty",
		"15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5", "", "1", "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseAddress(s)
		if err != nil {
			return
		}
		if enc := SS58Encode(id); enc != s {
			t.Fatalf("not canonical: %q parses to %x, which encodes to %q", s, id, enc)
		}
	})
}
