package snapsync_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"taobox/chain/snapsync"
	"taobox/chain/store"
	"taobox/chain/types"
)

// A serving node exports its state; a new node syncs an empty store from
// it, trusting only the header it verified (here: read from the server).
func Example() {
	dir, err := os.MkdirTemp("", "taobox-snapsync-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The serving node: a store with one block, and its exporter.
	server, err := store.Open(filepath.Join(dir, "server"), store.Options{Buckets: 16})
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	header := []byte("block 0 header")
	var changes []store.KV
	for i := range 100 {
		changes = append(changes, store.KV{Key: fmt.Appendf(nil, "balance/%d", i), Value: []byte("10")})
	}
	root, err := server.CommitBlock(store.BlockCommit{Hash: types.HashBytes(header), Header: header, Changes: changes})
	if err != nil {
		log.Fatal(err)
	}
	exp, err := snapsync.NewExporter(snapsync.ExporterConfig{Dir: filepath.Join(dir, "snapshots"), ChunkBytes: 512})
	if err != nil {
		log.Fatal(err)
	}
	m, err := exp.Take(server)
	if err != nil {
		log.Fatal(err)
	}

	// The new node: requests travel through Exporter.Serve (over chain/p2p
	// in the node).
	client, err := store.Open(filepath.Join(dir, "client"), store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	peer := snapsync.PeerSource("server", func(_ context.Context, t types.MsgType, body []byte) ([]byte, error) {
		return exp.Serve(t, body)
	})
	trusted := snapsync.Trusted{Height: 0, BlockHash: types.HashBytes(header), StateRoot: root, Header: header}
	if err := snapsync.Sync(context.Background(), snapsync.Config{}, client, trusted, []snapsync.Source{peer}); err != nil {
		log.Fatal(err)
	}
	v, _, _ := client.Get([]byte("balance/7"))
	fmt.Println(len(m.Chunks) > 1, client.StateRoot() == root, string(v))
	// Output: true true 10
}
