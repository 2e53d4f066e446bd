package types

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sampleHeader() Header {
	return Header{
		Version:    HeaderVersion,
		ChainID:    testChain,
		Height:     12,
		TimeMs:     1_700_000_000_000,
		Parent:     HashBytes([]byte("parent")),
		TxRoot:     HashBytes([]byte("txs")),
		StateRoot:  HashBytes([]byte("state")),
		EventsRoot: HashBytes([]byte("events")),
	}
}

func sampleBlock() Block {
	_, priv := testKey(2)
	b := Block{Header: sampleHeader(), Txs: sampleTxs()}
	b.Header.TxRoot = TxRoot(b.Txs)
	SignHeader(&b.Header, priv)
	return b
}

func TestHeaderRoundTrip(t *testing.T) {
	h := sampleBlock().Header
	enc := h.Encode()
	if len(enc) != HeaderSize {
		t.Fatalf("header encodes to %d bytes, HeaderSize is %d", len(enc), HeaderSize)
	}
	got, err := DecodeHeader(enc)
	if err != nil {
		t.Fatal(err)
	}
	if *got != h || !bytes.Equal(got.Encode(), enc) {
		t.Errorf("round trip: %+v, want %+v", *got, h)
	}
	if err := VerifyHeader(got); err != nil {
		t.Error(err)
	}
}

func TestHeaderHash(t *testing.T) {
	h := sampleBlock().Header
	want := HashBytes([]byte("taobox/header/v1"), h.Encode()[:HeaderSize-64])
	if h.Hash() != want {
		t.Error("Hash is not HashBytes(tag ‖ encoding without the signature)")
	}
	h2 := h
	h2.ProposerSig[5] ^= 1
	if h2.Hash() != h.Hash() {
		t.Error("the signature changes the hash")
	}
	h2 = h
	h2.StateRoot[0] ^= 1
	if h2.Hash() == h.Hash() {
		t.Error("the state root does not change the hash")
	}
}

func TestVerifyHeaderFails(t *testing.T) {
	base := sampleBlock().Header
	other, _ := testKey(7)
	for _, tc := range []struct {
		name   string
		mutate func(*Header)
	}{
		{"chain id", func(h *Header) { h.ChainID[0] ^= 1 }},
		{"height", func(h *Header) { h.Height++ }},
		{"time", func(h *Header) { h.TimeMs++ }},
		{"parent", func(h *Header) { h.Parent[31] ^= 1 }},
		{"tx root", func(h *Header) { h.TxRoot[1] ^= 1 }},
		{"state root", func(h *Header) { h.StateRoot[1] ^= 1 }},
		{"events root", func(h *Header) { h.EventsRoot[1] ^= 1 }},
		{"proposer", func(h *Header) { h.Proposer = other }},
		{"version", func(h *Header) { h.Version = 2 }},
		{"sig bit", func(h *Header) { h.ProposerSig[10] ^= 4 }},
	} {
		h := base
		tc.mutate(&h)
		if err := VerifyHeader(&h); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: VerifyHeader = %v, want ErrBadSignature", tc.name, err)
		}
	}
}

func TestDecodeHeaderRejects(t *testing.T) {
	sh := sampleHeader()
	enc := sh.Encode()
	v2 := append([]byte{}, enc...)
	v2[1] = 2
	for _, tc := range []struct {
		name string
		in   []byte
		is   error
	}{
		{"empty", nil, ErrShort},
		{"short", enc[:HeaderSize-1], ErrShort},
		{"trailing", append(append([]byte{}, enc...), 0), ErrTrailing},
		{"version 2", v2, ErrBadFormat},
		{"over cap", make([]byte, MaxHeaderSize+1), ErrTooLong},
	} {
		if _, err := DecodeHeader(tc.in); !errors.Is(err, tc.is) {
			t.Errorf("%s: DecodeHeader = %v, want %v", tc.name, err, tc.is)
		}
	}
}

func TestBlockRoundTrip(t *testing.T) {
	for _, b := range []Block{sampleBlock(), {Header: sampleHeader()}} {
		enc := b.Encode()
		got, err := DecodeBlock(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*got, b) {
			t.Errorf("round trip: %+v, want %+v", *got, b)
		}
		if !bytes.Equal(got.Encode(), enc) {
			t.Error("re-encoding differs")
		}
		if got.Hash() != b.Header.Hash() {
			t.Error("Block.Hash is not the header's")
		}
		if TxRoot(got.Txs) != got.Header.TxRoot && len(got.Txs) > 0 {
			t.Error("TxRoot changed in the round trip")
		}
	}
}

func TestTxRoot(t *testing.T) {
	txs := sampleTxs()
	leaves := make([]Hash, len(txs))
	for i := range txs {
		leaves[i] = txs[i].Hash()
	}
	if TxRoot(txs) != MerkleRoot(leaves) {
		t.Error("TxRoot is not MerkleRoot of the tx hashes")
	}
	if !TxRoot(nil).IsZero() {
		t.Error("TxRoot of no txs is not zero")
	}
	txs[3].Sig[0] ^= 1
	if TxRoot(txs) == MerkleRoot(leaves) {
		t.Error("TxRoot ignores signatures")
	}
}

func TestDecodeBlockRejects(t *testing.T) {
	b := sampleBlock()
	enc := b.Encode()
	countAt := HeaderSize + 4 // after the empty LastCommit's length
	withCount := func(n uint32) []byte {
		c := append([]byte{}, enc...)
		binary.BigEndian.PutUint32(c[countAt:], n)
		return c
	}
	badTx := append([]byte{}, enc...)
	badTx[countAt+4+32+16] = 99 // first tx's call kind
	for _, tc := range []struct {
		name, want string
		in         []byte
		is         error
	}{
		{"empty", "header.version", nil, ErrShort},
		{"trailing", "trailing", append(append([]byte{}, enc...), 1), ErrTrailing},
		{"count too high", "txs[18]", withCount(uint32(len(b.Txs) + 1)), ErrShort},
		{"count too low", "block.evidence", withCount(uint32(len(b.Txs) - 1)), ErrTooLong}, // the last tx is read as the evidence section
		{"count over cap", "block.txs", withCount(MaxBlockTxs + 1), ErrTooLong},
		{"count past input", "cannot fit", withCount(2000), ErrShort},
		{"bad tx", "block.txs[0]: call.kind", badTx, ErrBadFormat},
		{"over cap", "bytes >", make([]byte, MaxBlockSize+1), ErrTooLong},
	} {
		_, err := DecodeBlock(tc.in)
		if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: DecodeBlock = %v, want %v mentioning %q", tc.name, err, tc.is, tc.want)
		}
	}
}

func TestDecodeBlockTxOverMaxTxSize(t *testing.T) {
	// A set_weights of 4090 pairs encodes to more than MaxTxSize: DecodeTx
	// refuses it, so a block must too.
	big := make([]uint16, 4090)
	tx := Tx{Call: SetWeights{UIDs: big, Weights: big}}
	b := Block{Header: sampleHeader(), Txs: []Tx{tx}}
	if _, err := DecodeTx(tx.Encode()); !errors.Is(err, ErrTooLong) {
		t.Fatalf("DecodeTx = %v, want ErrTooLong", err)
	}
	if _, err := DecodeBlock(b.Encode()); !errors.Is(err, ErrTooLong) || !strings.Contains(err.Error(), "block.txs[0]") {
		t.Errorf("DecodeBlock = %v, want ErrTooLong at block.txs[0]", err)
	}
}

func TestBlockLastCommitRoundTrip(t *testing.T) {
	b := sampleBlock()
	b.Header.ValSetHash = HashBytes([]byte("set"))
	b.Header.NextValSetHash = HashBytes([]byte("next set"))
	b.LastCommit = []byte("parent certificate bytes")
	b.Header.LastCommitHash = HashBytes(b.LastCommit)
	enc := b.Encode()
	got, err := DecodeBlock(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Encode(), enc) || !bytes.Equal(got.LastCommit, b.LastCommit) ||
		got.Header.ValSetHash != b.Header.ValSetHash || got.Header.NextValSetHash != b.Header.NextValSetHash ||
		got.Header.LastCommitHash != b.Header.LastCommitHash {
		t.Fatalf("round trip changed the block: %+v", got.Header)
	}
	// Each new header field is covered by the hash.
	for i, mut := range []func(h *Header){
		func(h *Header) { h.ValSetHash[0] ^= 1 },
		func(h *Header) { h.NextValSetHash[0] ^= 1 },
		func(h *Header) { h.LastCommitHash[0] ^= 1 },
	} {
		h := b.Header
		mut(&h)
		if h.Hash() == b.Header.Hash() {
			t.Errorf("field %d is not covered by Header.Hash", i)
		}
	}
	// An oversized LastCommit is refused before reading it.
	big := Block{Header: sampleHeader(), LastCommit: make([]byte, MaxCertificate+1)}
	if _, err := DecodeBlock(big.Encode()); !errors.Is(err, ErrTooLong) || !strings.Contains(err.Error(), "last_commit") {
		t.Errorf("DecodeBlock(oversized LastCommit) = %v, want ErrTooLong at block.last_commit", err)
	}
}

func TestBlockHashOf(t *testing.T) {
	b := sampleBlock()
	b.LastCommit = []byte("cert")
	got, ok := BlockHashOf(b.Encode())
	if !ok || got != b.Hash() {
		t.Fatalf("BlockHashOf = %s %v, want %s", got, ok, b.Hash())
	}
	if _, ok := BlockHashOf(b.Encode()[:HeaderSize-1]); ok {
		t.Fatal("BlockHashOf accepted a short input")
	}
}

// TestBlockEvidence: the evidence section round-trips, EvidenceRoot commits
// to each piece and its order, and the decoder enforces its caps.
func TestBlockEvidence(t *testing.T) {
	b := sampleBlock()
	b.Evidence = [][]byte{{1, 2, 3}, bytes.Repeat([]byte{7}, MaxEvidenceMsg)}
	b.Header.EvidenceHash = EvidenceRoot(b.Evidence)
	enc := b.Encode()
	got, err := DecodeBlock(enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Evidence) != 2 || !bytes.Equal(got.Evidence[1], b.Evidence[1]) || got.Hash() != b.Hash() {
		t.Fatalf("evidence did not round-trip: %d pieces", len(got.Evidence))
	}
	if !bytes.Equal(got.Encode(), enc) {
		t.Fatal("re-encoding differs")
	}
	if EvidenceRoot(nil) != (Hash{}) {
		t.Error("EvidenceRoot of nothing is not zero")
	}
	swapped := [][]byte{b.Evidence[1], b.Evidence[0]}
	changed := [][]byte{{1, 2, 4}, b.Evidence[1]}
	if EvidenceRoot(swapped) == b.Header.EvidenceHash || EvidenceRoot(changed) == b.Header.EvidenceHash {
		t.Error("EvidenceRoot ignores order or content")
	}
	pb := sampleBlock()
	plain := pb.Encode()
	evAt := len(plain) - 4 // the evidence count of the block without evidence
	withEv := func(count uint32, pieces ...[]byte) []byte {
		c := append([]byte{}, plain[:evAt]...)
		c = binary.BigEndian.AppendUint32(c, count)
		for _, p := range pieces {
			c = binary.BigEndian.AppendUint32(c, uint32(len(p)))
			c = append(c, p...)
		}
		return c
	}
	for _, tc := range []struct {
		name, want string
		in         []byte
		is         error
	}{
		{"count over cap", "block.evidence", withEv(MaxBlockEvidence + 1), ErrTooLong},
		{"piece over cap", "block.evidence[0]", withEv(1, make([]byte, MaxEvidenceMsg+1)), ErrTooLong},
		{"empty piece", "empty evidence", withEv(1, nil), ErrBadFormat},
		{"missing piece", "block.evidence[1]", withEv(2, []byte{1}), ErrShort},
	} {
		_, err := DecodeBlock(tc.in)
		if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: DecodeBlock = %v, want %v mentioning %q", tc.name, err, tc.is, tc.want)
		}
	}
}
