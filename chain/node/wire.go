package node

import (
	"fmt"

	"taobox/chain/consensus"
	"taobox/chain/types"
)

// Request and response payloads of ReqHeaders, ReqBlocks and
// ReqEpochProof (integers big-endian, as in chain/types):
//
//	RangeRequest     = From u64 ‖ Count u32                       (12 bytes)
//	HeadersResponse  = u32 n ‖ n × (u32 len ‖ encoded header)
//	BlocksResponse   = u32 n ‖ n × (u32 len ‖ encoded block ‖ u32 len ‖ certificate)
//	EpochProof       = u32 n ‖ n × (u32 len ‖ header ‖ u32 len ‖ certificate ‖
//	                                 u32 len ‖ next set (consensus.EncodeValidators))
//
// ReqHeaders and ReqBlocks ask for Count heights from From (at most
// MaxHeadersPerReq and MaxBlocksPerReq); the answer holds the consecutive
// heights the server has from From, possibly fewer. ReqEpochProof asks for
// the handoff fragments of authority epochs From, From+1, …: fragment e is
// the last block of epoch e-1 (height e·EpochBlocks), its certificate and
// the set of epoch e that its header's NextValSetHash commits to. Each
// decoder refuses more than the caps, lengths past the input and trailing
// bytes.

// maxEpochFragments caps the fragments of one epoch proof.
const maxEpochFragments = 1024

// RangeRequest is the body of ReqHeaders, ReqBlocks and ReqEpochProof.
type RangeRequest struct {
	From  uint64
	Count uint32
}

// Encode returns the 12-byte encoding of r.
func (r RangeRequest) Encode() []byte {
	w := types.NewWriter(make([]byte, 0, 12))
	w.U64(r.From)
	w.U32(r.Count)
	return w.Bytes()
}

// DecodeRangeRequest decodes exactly 12 bytes.
func DecodeRangeRequest(b []byte) (RangeRequest, error) {
	r := types.NewReader(b)
	var q RangeRequest
	q.From = r.U64("range.from")
	q.Count = r.U32("range.count")
	if err := r.Done(); err != nil {
		return RangeRequest{}, fmt.Errorf("node: decode range request: %w", err)
	}
	return q, nil
}

// BlockWithCert is a finalized block and its certificate, both encoded.
type BlockWithCert struct {
	Block []byte // types.Block.Encode
	Cert  []byte // consensus.EncodeCertificate
}

// EncodeBlocksResponse encodes a ReqBlocks answer.
func EncodeBlocksResponse(bs []BlockWithCert) []byte {
	size := 4
	for _, b := range bs {
		size += 8 + len(b.Block) + len(b.Cert)
	}
	w := types.NewWriter(make([]byte, 0, size))
	w.Len(len(bs))
	for _, b := range bs {
		w.VarBytes(b.Block)
		w.VarBytes(b.Cert)
	}
	return w.Bytes()
}

// DecodeBlocksResponse decodes a ReqBlocks answer of at most
// types.MaxBlocksResp bytes and types.MaxBlocksPerReq blocks.
func DecodeBlocksResponse(b []byte) ([]BlockWithCert, error) {
	if len(b) > types.MaxBlocksResp {
		return nil, fmt.Errorf("node: decode blocks response: %w: %d bytes > %d", types.ErrTooLong, len(b), types.MaxBlocksResp)
	}
	r := types.NewReader(b)
	n := r.Len("blocks", types.MaxBlocksPerReq)
	out := make([]BlockWithCert, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		var bc BlockWithCert
		bc.Block = r.VarBytes("blocks.block", types.MaxBlockSize)
		bc.Cert = r.VarBytes("blocks.cert", types.MaxCertificate)
		out = append(out, bc)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("node: decode blocks response: %w", err)
	}
	return out, nil
}

// EncodeHeadersResponse encodes a ReqHeaders answer.
func EncodeHeadersResponse(hs [][]byte) []byte {
	w := types.NewWriter(make([]byte, 0, 4+len(hs)*(4+types.HeaderSize)))
	w.Len(len(hs))
	for _, h := range hs {
		w.VarBytes(h)
	}
	return w.Bytes()
}

// DecodeHeadersResponse decodes a ReqHeaders answer (at most
// types.MaxHeadersPerReq headers of at most types.MaxHeaderSize bytes).
func DecodeHeadersResponse(b []byte) ([][]byte, error) {
	if len(b) > types.MaxHeadersResp {
		return nil, fmt.Errorf("node: decode headers response: %w: %d bytes > %d", types.ErrTooLong, len(b), types.MaxHeadersResp)
	}
	r := types.NewReader(b)
	n := r.Len("headers", types.MaxHeadersPerReq)
	out := make([][]byte, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		out = append(out, r.VarBytes("headers.header", types.MaxHeaderSize))
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("node: decode headers response: %w", err)
	}
	return out, nil
}

// EpochFragment is one authority handoff: the last block of an epoch (its
// header), its certificate, and the next epoch's set.
type EpochFragment struct {
	Header  []byte
	Cert    []byte
	NextSet []byte
}

// EncodeEpochProof encodes a ReqEpochProof answer.
func EncodeEpochProof(fs []EpochFragment) []byte {
	w := types.NewWriter(nil)
	w.Len(len(fs))
	for _, f := range fs {
		w.VarBytes(f.Header)
		w.VarBytes(f.Cert)
		w.VarBytes(f.NextSet)
	}
	return w.Bytes()
}

// DecodeEpochProof decodes a ReqEpochProof answer of at most
// types.MaxEpochProof bytes.
func DecodeEpochProof(b []byte) ([]EpochFragment, error) {
	if len(b) > types.MaxEpochProof {
		return nil, fmt.Errorf("node: decode epoch proof: %w: %d bytes > %d", types.ErrTooLong, len(b), types.MaxEpochProof)
	}
	r := types.NewReader(b)
	n := r.Len("fragments", maxEpochFragments)
	out := make([]EpochFragment, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		var f EpochFragment
		f.Header = r.VarBytes("fragment.header", types.MaxHeaderSize)
		f.Cert = r.VarBytes("fragment.cert", types.MaxCertificate)
		f.NextSet = r.VarBytes("fragment.next_set", 4+40*consensus.MaxValidators)
		out = append(out, f)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("node: decode epoch proof: %w", err)
	}
	return out, nil
}

// VerifyEpochProof follows the handoff fragments of epochs from, from+1, …
// starting from the set of epoch from-1 (the genesis set for from = 1) and
// returns the set of the last epoch proven. Each fragment must be the
// header at height e·epochBlocks of chainID, finalized by a certificate of
// more than 2/3 of the set it trusts at that point, whose NextValSetHash is
// the hash of the fragment's next set. It is a pure function: a syncing
// node calls it with the genesis set to learn the current authorities.
func VerifyEpochProof(chainID types.Hash, epochBlocks, from uint64, trusted []consensus.Validator, fs []EpochFragment) ([]consensus.Validator, error) {
	set := trusted
	for i, f := range fs {
		e := from + uint64(i)
		vs, err := consensus.NewValidatorSet(set)
		if err != nil {
			return nil, fmt.Errorf("node: epoch proof fragment %d: the trusted set: %w", e, err)
		}
		h, err := types.DecodeHeader(f.Header)
		if err != nil {
			return nil, fmt.Errorf("node: epoch proof fragment %d: %w", e, err)
		}
		if h.ChainID != chainID || h.Height != e*epochBlocks {
			return nil, fmt.Errorf("node: epoch proof fragment %d: header of chain %s height %d, want chain %s height %d", e, h.ChainID, h.Height, chainID, e*epochBlocks)
		}
		if h.ValSetHash != vs.Hash() {
			return nil, fmt.Errorf("node: epoch proof fragment %d: the header's authority set is not the trusted one", e)
		}
		cert, err := decodeCert(f.Cert)
		if err != nil {
			return nil, fmt.Errorf("node: epoch proof fragment %d: %v", e, err)
		}
		if cert.Height != h.Height || cert.BlockID != h.Hash() {
			return nil, fmt.Errorf("node: epoch proof fragment %d: the certificate is not for its header", e)
		}
		if err := consensus.VerifyCertificate(chainID, vs, &cert); err != nil {
			return nil, fmt.Errorf("node: epoch proof fragment %d: %w", e, err)
		}
		next, err := consensus.DecodeValidators(f.NextSet)
		if err != nil {
			return nil, fmt.Errorf("node: epoch proof fragment %d: %w", e, err)
		}
		if consensus.ValidatorSetHash(next) != h.NextValSetHash {
			return nil, fmt.Errorf("node: epoch proof fragment %d: the next set does not match the header's NextValSetHash", e)
		}
		set = next
	}
	return set, nil
}
