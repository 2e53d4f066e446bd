package store_test

import (
	"fmt"
	"log"
	"os"

	"taobox/chain/store"
	"taobox/chain/types"
)

// A node commits each block after checking (or, as the proposer, filling
// in) the state root that the header carries.
func Example() {
	dir, err := os.MkdirTemp("", "taobox-store-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := store.Open(dir, store.Options{Buckets: 16})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	changes := []store.KV{
		{Key: []byte("balance/alice"), Value: []byte("100")},
		{Key: []byte("balance/bob"), Value: []byte("50")},
	}
	root, err := s.RootAfter(changes) // goes into the header
	if err != nil {
		log.Fatal(err)
	}
	header := []byte("genesis header")
	committed, err := s.CommitBlock(store.BlockCommit{
		Height:        0,
		Hash:          types.HashBytes(header),
		Header:        header,
		Changes:       changes,
		EpochBoundary: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	v, ok, _ := s.Get([]byte("balance/alice"))
	h, _, _ := s.Head()
	fmt.Println(committed == root, string(v), ok, h)

	// A later block deletes a key with a nil value.
	header = []byte("block 1 header")
	if _, err := s.CommitBlock(store.BlockCommit{
		Height:  1,
		Hash:    types.HashBytes(header),
		Header:  header,
		Changes: []store.KV{{Key: []byte("balance/bob")}},
	}); err != nil {
		log.Fatal(err)
	}
	_, ok, _ = s.Get([]byte("balance/bob"))
	fmt.Println(ok)
	// Output:
	// true 100 true 0
	// false
}
