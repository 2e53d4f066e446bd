package snapsync

// Request bodies of the snapshot requests on the wire (chain/p2p carries
// them; the response is the manifest or chunk bytes as served):
//
//	ReqManifest: u64 height
//	ReqChunk:    u64 height ‖ u32 index

import (
	"context"
	"fmt"

	"taobox/chain/types"
)

// EncodeManifestRequest returns the body of a ReqManifest for height.
func EncodeManifestRequest(height uint64) []byte {
	w := types.NewWriter(nil)
	w.U64(height)
	return w.Bytes()
}

// DecodeManifestRequest decodes a ReqManifest body.
func DecodeManifestRequest(b []byte) (height uint64, err error) {
	r := types.NewReader(b)
	height = r.U64("height")
	if err := r.Done(); err != nil {
		return 0, fmt.Errorf("snapsync: manifest request: %w", err)
	}
	return height, nil
}

// EncodeChunkRequest returns the body of a ReqChunk.
func EncodeChunkRequest(height uint64, index int) []byte {
	w := types.NewWriter(nil)
	w.U64(height)
	w.U32(uint32(index))
	return w.Bytes()
}

// DecodeChunkRequest decodes a ReqChunk body.
func DecodeChunkRequest(b []byte) (height uint64, index int, err error) {
	r := types.NewReader(b)
	height = r.U64("height")
	i := r.U32("index")
	if err := r.Done(); err != nil {
		return 0, 0, fmt.Errorf("snapsync: chunk request: %w", err)
	}
	return height, int(i), nil
}

// Serve answers a ReqManifest or ReqChunk body from e: the bytes to send
// back, or ErrNotFound (the node answers "not found"), or a decoding error
// (a malformed request: the peer misbehaves).
func (e *Exporter) Serve(t types.MsgType, payload []byte) ([]byte, error) {
	switch t {
	case types.ReqManifest:
		h, err := DecodeManifestRequest(payload)
		if err != nil {
			return nil, err
		}
		return e.Manifest(h)
	case types.ReqChunk:
		h, i, err := DecodeChunkRequest(payload)
		if err != nil {
			return nil, err
		}
		return e.Chunk(h, i)
	}
	return nil, fmt.Errorf("snapsync: cannot serve a %v request", t)
}

// RequestFunc sends one request of type t with body payload to a peer and
// returns its response body (chain/p2p Host.Request bound to one peer).
type RequestFunc func(ctx context.Context, t types.MsgType, payload []byte) ([]byte, error)

// PeerSource adapts a peer reached through req to a Source, sending
// ReqManifest and ReqChunk with the bodies above. id names the peer in
// OnBadPeer and logs.
func PeerSource(id string, req RequestFunc) Source { return peerSource{id, req} }

type peerSource struct {
	id  string
	req RequestFunc
}

func (p peerSource) ID() string { return p.id }

func (p peerSource) Manifest(ctx context.Context, height uint64) ([]byte, error) {
	return p.req(ctx, types.ReqManifest, EncodeManifestRequest(height))
}

func (p peerSource) Chunk(ctx context.Context, height uint64, index int) ([]byte, error) {
	return p.req(ctx, types.ReqChunk, EncodeChunkRequest(height, index))
}
