package types

import (
	"crypto/ed25519"
	"fmt"
)

// Header and block encoding (all integers big-endian):
//
//	Header = Version u16 ‖ ChainID[32] ‖ Height u64 ‖ TimeMs u64 ‖ Parent[32] ‖
//	         TxRoot[32] ‖ StateRoot[32] ‖ EventsRoot[32] ‖ ValSetHash[32] ‖
//	         NextValSetHash[32] ‖ LastCommitHash[32] ‖ EvidenceHash[32] ‖
//	         Proposer[32] ‖ ProposerSig[64]                   (402 bytes)
//	Block  = Header ‖ u32 length ‖ LastCommit (at most MaxCertificate bytes) ‖
//	         u32 tx count ‖ each Tx as in tx.go, back to back ‖
//	         u32 evidence count (at most MaxBlockEvidence) ‖
//	         each (u32 length ‖ encoded evidence, at most MaxEvidenceMsg bytes)

// HeaderVersion is the only header version this code reads and writes.
const HeaderVersion = 1

// Caps on what the block decoders accept.
const (
	MaxHeaderSize = 1 << 10 // bytes; a header is fixed at HeaderSize today
	MaxBlockSize  = 4 << 20 // bytes, header included
	MaxBlockTxs   = 20000
	// MaxBlockEvidence caps the pieces of equivocation evidence one block
	// carries (each at most MaxEvidenceMsg bytes).
	MaxBlockEvidence = 16
	// MaxEvidenceBytes is the most a block's evidence section can take.
	MaxEvidenceBytes = 4 + MaxBlockEvidence*(4+MaxEvidenceMsg)
)

// HeaderSize is the length of an encoded header.
const HeaderSize = 2 + 32 + 8 + 8 + 8*32 + 32 + 64

const headerDomain = "taobox/header/v1"

// minTxSize is the shortest transaction encoding (a vote): signer, nonce,
// valid_until, kind, proposal, aye, signature. DecodeBlock uses it to refuse
// a transaction count the input cannot hold before allocating for it.
const minTxSize = 32 + 8 + 8 + 1 + 8 + 1 + 64

// Header is a block's header. Its hash (Hash) names the block; the proposer
// signs the same bytes (SignHeader).
type Header struct {
	Version    uint16 // HeaderVersion
	ChainID    Hash   // the genesis hash
	Height     uint64 // genesis is 0
	TimeMs     uint64 // proposer's clock, Unix milliseconds
	Parent     Hash   // hash of the header at Height-1; zero at genesis
	TxRoot     Hash   // TxRoot of the block's transactions
	StateRoot  Hash   // state root after applying the block
	EventsRoot Hash   // EventsRoot of the events the block emitted
	// ValSetHash is the hash of the authority set that finalizes this
	// block (chain/consensus ValidatorSetHash).
	ValSetHash Hash
	// NextValSetHash is the hash of the set that finalizes the next
	// block: equal to ValSetHash except at the last block of an authority
	// epoch, where it commits the next epoch's set.
	NextValSetHash Hash
	// LastCommitHash is HashBytes of the parent's encoded finality
	// certificate (Block.LastCommit); zero at height 1 and at genesis.
	LastCommitHash Hash
	// EvidenceHash is EvidenceRoot of Block.Evidence; zero when the block
	// carries no evidence.
	EvidenceHash Hash
	Proposer     AccountID // the authority that proposed it
	ProposerSig  Signature // Proposer's signature of SigningBytes
}

func (h *Header) encodeUnsigned(w *Writer) {
	w.U16(h.Version)
	w.Fixed(h.ChainID[:])
	w.U64(h.Height)
	w.U64(h.TimeMs)
	w.Fixed(h.Parent[:])
	w.Fixed(h.TxRoot[:])
	w.Fixed(h.StateRoot[:])
	w.Fixed(h.EventsRoot[:])
	w.Fixed(h.ValSetHash[:])
	w.Fixed(h.NextValSetHash[:])
	w.Fixed(h.LastCommitHash[:])
	w.Fixed(h.EvidenceHash[:])
	w.Fixed(h.Proposer[:])
}

// Encode returns the canonical encoding of h, ProposerSig included.
func (h *Header) Encode() []byte {
	w := NewWriter(make([]byte, 0, HeaderSize))
	h.encodeUnsigned(w)
	w.Fixed(h.ProposerSig[:])
	return w.Bytes()
}

// SigningBytes returns "taobox/header/v1" ‖ the encoding of h without
// ProposerSig: what Hash hashes and the proposer signs.
func (h *Header) SigningBytes() []byte {
	w := NewWriter(make([]byte, 0, len(headerDomain)+HeaderSize))
	w.Fixed([]byte(headerDomain))
	h.encodeUnsigned(w)
	return w.Bytes()
}

// Hash returns the block's id: HashBytes(SigningBytes()). It leaves out
// ProposerSig, so the id is fixed before signing and a signature cannot
// change it.
func (h *Header) Hash() Hash { return HashBytes(h.SigningBytes()) }

func decodeHeader(r *Reader, h *Header) {
	h.Version = r.U16("header.version")
	if r.Err() == nil && h.Version != HeaderVersion {
		r.Fail("header.version", fmt.Errorf("%w: version %d, want %d", ErrBadFormat, h.Version, HeaderVersion))
		return
	}
	r.Fixed("header.chain_id", h.ChainID[:])
	h.Height = r.U64("header.height")
	h.TimeMs = r.U64("header.time_ms")
	r.Fixed("header.parent", h.Parent[:])
	r.Fixed("header.tx_root", h.TxRoot[:])
	r.Fixed("header.state_root", h.StateRoot[:])
	r.Fixed("header.events_root", h.EventsRoot[:])
	r.Fixed("header.val_set_hash", h.ValSetHash[:])
	r.Fixed("header.next_val_set_hash", h.NextValSetHash[:])
	r.Fixed("header.last_commit_hash", h.LastCommitHash[:])
	r.Fixed("header.evidence_hash", h.EvidenceHash[:])
	r.Fixed("header.proposer", h.Proposer[:])
	r.Fixed("header.proposer_sig", h.ProposerSig[:])
}

// DecodeHeader decodes a header from exactly b. It rejects an input over
// MaxHeaderSize bytes, a Version other than HeaderVersion, and trailing
// bytes. It does not check the signature (VerifyHeader).
func DecodeHeader(b []byte) (*Header, error) {
	if len(b) > MaxHeaderSize {
		return nil, fmt.Errorf("types: decode header: %w: %d bytes > %d", ErrTooLong, len(b), MaxHeaderSize)
	}
	r := NewReader(b)
	h := new(Header)
	decodeHeader(r, h)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("types: decode header: %w", err)
	}
	return h, nil
}

// SignHeader sets h.Proposer to priv's account and h.ProposerSig to priv's
// signature of h.SigningBytes(). Set every other field first. It panics if
// priv is not an ed25519 private key of the right length.
func SignHeader(h *Header, priv ed25519.PrivateKey) {
	h.Proposer = AccountIDFromPrivateKey(priv)
	copy(h.ProposerSig[:], ed25519.Sign(priv, h.SigningBytes()))
}

// VerifyHeader checks that h.ProposerSig is h.Proposer's signature of
// h.SigningBytes(); the error wraps ErrBadSignature when it is not. Whether
// Proposer was entitled to propose at that height is the consensus rules'
// business.
func VerifyHeader(h *Header) error {
	if !ed25519.Verify(h.Proposer.PublicKey(), h.SigningBytes(), h.ProposerSig[:]) {
		return fmt.Errorf("%w: header %s at height %d is not signed by its proposer %s",
			ErrBadSignature, h.Hash(), h.Height, h.Proposer)
	}
	return nil
}

// Block is a header, the finality certificate of its parent and the
// transactions it commits to (through TxRoot).
type Block struct {
	Header Header
	// LastCommit is the parent's encoded finality certificate (chain/consensus
	// EncodeCertificate); empty at height 1 (genesis has no certificate).
	// Header.LastCommitHash commits to it.
	LastCommit []byte
	Txs        []Tx
	// Evidence holds encoded equivocation evidence (chain/consensus
	// EncodeEvidence), at most MaxBlockEvidence pieces of at most
	// MaxEvidenceMsg bytes each; Header.EvidenceHash commits to it. Nil
	// when the block carries none.
	Evidence [][]byte
}

// Hash returns the block's id, its header's Hash.
func (b *Block) Hash() Hash { return b.Header.Hash() }

// Encode returns the canonical encoding of b. It panics if a transaction's
// Call is not a call value (see EncodeCall).
func (b *Block) Encode() []byte {
	w := NewWriter(make([]byte, 0, HeaderSize+8+len(b.LastCommit)+len(b.Txs)*160))
	b.Header.encodeUnsigned(w)
	w.Fixed(b.Header.ProposerSig[:])
	w.VarBytes(b.LastCommit)
	w.Len(len(b.Txs))
	for i := range b.Txs {
		encodeTx(w, &b.Txs[i])
	}
	w.Len(len(b.Evidence))
	for _, e := range b.Evidence {
		w.VarBytes(e)
	}
	return w.Bytes()
}

// DecodeBlock decodes a block from exactly b. It rejects an input over
// MaxBlockSize bytes, a LastCommit over MaxCertificate bytes, more than
// MaxBlockTxs transactions, a transaction
// whose encoding exceeds MaxTxSize or that DecodeTx would reject, more than
// MaxBlockEvidence pieces of evidence or one over MaxEvidenceMsg bytes, a header
// DecodeHeader would reject, and trailing bytes, so Encode of the result is
// b. It checks neither signatures nor that TxRoot matches the transactions
// (compare TxRoot(blk.Txs) with blk.Header.TxRoot, EvidenceRoot(blk.Evidence)
// with blk.Header.EvidenceHash). A block with no transactions decodes with
// Txs nil, one with no evidence with Evidence nil.
func DecodeBlock(b []byte) (*Block, error) {
	if len(b) > MaxBlockSize {
		return nil, fmt.Errorf("types: decode block: %w: %d bytes > %d", ErrTooLong, len(b), MaxBlockSize)
	}
	r := NewReader(b)
	blk := new(Block)
	decodeHeader(r, &blk.Header)
	blk.LastCommit = r.VarBytes("block.last_commit", MaxCertificate)
	if len(blk.LastCommit) == 0 {
		blk.LastCommit = nil
	}
	n := r.Len("block.txs", MaxBlockTxs)
	if n > r.Remaining()/minTxSize {
		r.Fail("block.txs", fmt.Errorf("%w: %d transactions cannot fit in %d bytes", ErrShort, n, r.Remaining()))
	}
	if n > 0 && r.Err() == nil {
		blk.Txs = make([]Tx, n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		start := r.off
		decodeTx(r, &blk.Txs[i])
		if r.err != nil {
			r.err = fmt.Errorf("block.txs[%d]: %w", i, r.err)
		} else if r.off-start > MaxTxSize {
			r.Fail(fmt.Sprintf("block.txs[%d]", i), fmt.Errorf("%w: transaction of %d bytes > %d", ErrTooLong, r.off-start, MaxTxSize))
		}
	}
	ne := r.Len("block.evidence", MaxBlockEvidence)
	for i := 0; i < ne && r.Err() == nil; i++ {
		e := r.VarBytes(fmt.Sprintf("block.evidence[%d]", i), MaxEvidenceMsg)
		if r.Err() == nil && len(e) == 0 {
			r.Fail(fmt.Sprintf("block.evidence[%d]", i), fmt.Errorf("%w: empty evidence", ErrBadFormat))
		}
		blk.Evidence = append(blk.Evidence, e)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("types: decode block: %w", err)
	}
	return blk, nil
}

// TxRoot returns MerkleRoot of the transactions' hashes (Tx.Hash), in order;
// the zero Hash for no transactions.
func TxRoot(txs []Tx) Hash {
	if len(txs) == 0 {
		return Hash{}
	}
	leaves := make([]Hash, len(txs))
	for i := range txs {
		leaves[i] = txs[i].Hash()
	}
	return MerkleRoot(leaves)
}

// EvidenceRoot returns MerkleRoot of HashBytes of each encoded piece of
// evidence, in order; the zero Hash for none.
func EvidenceRoot(ev [][]byte) Hash {
	if len(ev) == 0 {
		return Hash{}
	}
	leaves := make([]Hash, len(ev))
	for i, e := range ev {
		leaves[i] = HashBytes([]byte("taobox/evidence/v1"), e)
	}
	return MerkleRoot(leaves)
}

// BlockHashOf returns the hash of the header that starts the encoded block
// b (what Block.Hash returns for the decoded block) without decoding the
// rest; ok is false when b is shorter than a header. It does not check
// that b decodes, nor that the body matches the header's roots.
func BlockHashOf(b []byte) (h Hash, ok bool) {
	if len(b) < HeaderSize {
		return Hash{}, false
	}
	return HashBytes([]byte(headerDomain), b[:HeaderSize-64]), true
}
