package snapsync

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"taobox/chain/types"
)

// TestPeerSourceServe syncs through PeerSource and Exporter.Serve, the
// pair the node wires to chain/p2p, with the request bodies encoded and
// decoded in between.
func TestPeerSourceServe(t *testing.T) {
	src := sourceStore(t, 64, 2, 300)
	e, _ := export(t, src, 4<<10)
	tr := trustedOf(t, src)
	req := func(ctx context.Context, mt types.MsgType, payload []byte) ([]byte, error) {
		if len(payload) > mt.MaxMessage() {
			t.Errorf("%v request of %d bytes", mt, len(payload))
		}
		b, err := e.Serve(mt, bytes.Clone(payload))
		if len(b) > mt.MaxResponse() {
			t.Errorf("%v response of %d bytes", mt, len(b))
		}
		return b, err
	}
	dst := openEmpty(t, t.TempDir())
	defer dst.Close()
	if err := Sync(context.Background(), Config{}, dst, tr, []Source{PeerSource("p", req)}); err != nil {
		t.Fatal(err)
	}
	if dst.StateRoot() != tr.StateRoot {
		t.Fatal("wrong root")
	}
	if _, err := e.Serve(types.ReqManifest, EncodeManifestRequest(tr.Height+1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown height: %v", err)
	}
	if _, err := e.Serve(types.ReqChunk, []byte{1, 2}); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("malformed request: %v", err)
	}
	if _, err := e.Serve(types.ReqHeaders, nil); err == nil {
		t.Fatal("served a headers request")
	}
}

func FuzzDecodeRequests(f *testing.F) {
	f.Add(EncodeManifestRequest(9))
	f.Add(EncodeChunkRequest(9, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := DecodeManifestRequest(b); err == nil && !bytes.Equal(EncodeManifestRequest(h), b) {
			t.Fatal("manifest request re-encodes differently")
		}
		if h, i, err := DecodeChunkRequest(b); err == nil && !bytes.Equal(EncodeChunkRequest(h, i), b) {
			t.Fatal("chunk request re-encodes differently")
		}
	})
}
