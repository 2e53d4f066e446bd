package types

import "fmt"

// MsgType identifies a peer-to-peer message (chain/p2p carries it, the node
// interprets it). Gossip types travel one way on a unidirectional stream;
// request types open a bidirectional stream and get one response. The
// numbers are part of the wire protocol: never renumber, only add.
type MsgType uint8

const (
	// Gossip, flooded to every peer; the receiver relays what is new to it.
	MsgTx       MsgType = 1 // an encoded Tx
	MsgProposal MsgType = 2 // a consensus proposal (chain/consensus EncodeMessage)
	MsgVote     MsgType = 3 // a prevote or precommit (chain/consensus EncodeMessage)
	MsgBlock    MsgType = 4 // a finalized block and the certificate that finalized it
	MsgEvidence MsgType = 5 // two conflicting signed votes of one validator

	// Requests, answered on the same stream.
	ReqHello      MsgType = 16 // handshake: chain id, protocol version, head (chain/p2p)
	ReqPeers      MsgType = 17 // peer exchange (chain/p2p)
	ReqHeaders    MsgType = 18 // headers from a height
	ReqBlocks     MsgType = 19 // blocks (with certificates) from a height
	ReqEpochProof MsgType = 20 // epoch handoff proofs from an epoch
	ReqManifest   MsgType = 21 // a snapshot manifest at a height
	ReqChunk      MsgType = 22 // one snapshot chunk
	ReqProbe      MsgType = 23 // connect back to the asker's endpoint (ProbeRequest → ProbeResult)
)

// IsGossip reports whether t is a one-way gossip message.
func (t MsgType) IsGossip() bool { return t >= MsgTx && t <= MsgEvidence }

// IsRequest reports whether t is a request type.
func (t MsgType) IsRequest() bool { return t >= ReqHello && t <= ReqProbe }

func (t MsgType) String() string {
	switch t {
	case MsgTx:
		return "tx"
	case MsgProposal:
		return "proposal"
	case MsgVote:
		return "vote"
	case MsgBlock:
		return "block"
	case MsgEvidence:
		return "evidence"
	case ReqHello:
		return "hello"
	case ReqPeers:
		return "peers"
	case ReqHeaders:
		return "headers"
	case ReqBlocks:
		return "blocks"
	case ReqEpochProof:
		return "epoch-proof"
	case ReqManifest:
		return "manifest"
	case ReqChunk:
		return "chunk"
	case ReqProbe:
		return "probe"
	}
	return fmt.Sprintf("msg-%d", uint8(t))
}

// Size caps, in bytes, that a receiver enforces while reading (through a
// limited reader) before it decodes anything.
const (
	MaxVoteMsg       = 512
	MaxEvidenceMsg   = 2 << 10
	MaxCertificate   = 80 << 10 // 48 + 68 bytes per signer: room for 1,024 signers (the most authorities a genesis allows)
	MaxProposalMsg   = MaxBlockSize + MaxCertificate + 1<<10
	MaxBlockMsg      = MaxBlockSize + MaxCertificate + 1<<10
	MaxRequestMsg    = 1 << 10 // every request body (heights, counts, ids)
	MaxHelloMsg      = 4 << 10
	MaxHeadersResp   = 512 * (MaxHeaderSize + 64)
	MaxBlocksResp    = MaxBlocksRespBytes + MaxBlockMsg // one block may exceed the soft limit
	MaxEpochProof    = 8 << 20
	MaxManifestResp  = 4 << 20
	MaxChunkResp     = 4 << 20
	MaxPeersResp     = 64 << 10
	MaxHeadersPerReq = 512
	MaxBlocksPerReq  = 64

	// MaxBlocksRespBytes is the soft size of a blocks response: a server
	// stops adding blocks once it has this many bytes (at least one block).
	MaxBlocksRespBytes = 4 << 20
)

// MaxMessage returns the cap on a gossip message of type t, or on the body
// of a request of type t.
func (t MsgType) MaxMessage() int {
	switch t {
	case MsgTx:
		return MaxTxSize
	case MsgProposal:
		return MaxProposalMsg
	case MsgVote:
		return MaxVoteMsg
	case MsgBlock:
		return MaxBlockMsg
	case MsgEvidence:
		return MaxEvidenceMsg
	case ReqHello:
		return MaxHelloMsg
	}
	if t.IsRequest() {
		return MaxRequestMsg
	}
	return 0
}

// MaxResponse returns the cap on the response to a request of type t (0
// for gossip types, which have no response).
func (t MsgType) MaxResponse() int {
	switch t {
	case ReqHello:
		return MaxHelloMsg
	case ReqPeers:
		return MaxPeersResp
	case ReqHeaders:
		return MaxHeadersResp
	case ReqBlocks:
		return MaxBlocksResp
	case ReqEpochProof:
		return MaxEpochProof
	case ReqManifest:
		return MaxManifestResp
	case ReqChunk:
		return MaxChunkResp
	case ReqProbe:
		return MaxProbeResult
	}
	return 0
}
