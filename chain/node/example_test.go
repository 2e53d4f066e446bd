package node_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"taobox/chain/node"
	"taobox/chain/state"
	"taobox/chain/types"
)

// A single-authority chain: open it, submit a signed transfer, produce a
// block and read the balances back.
func Example() {
	dir, _ := os.MkdirTemp("", "taobox-node-example")
	defer os.RemoveAll(dir)
	alice := ed25519.NewKeyFromSeed(make([]byte, 32))
	bob := types.AccountIDFromPrivateKey(ed25519.NewKeyFromSeed(append(make([]byte, 31), 1)))
	authority := ed25519.NewKeyFromSeed(append(make([]byte, 31), 2))

	g := &state.Genesis{ChainName: "example", Params: state.DefaultParams(), SubnetDefaults: state.DefaultSubnetHyperparams(),
		Balances: []state.GenesisBalance{{Account: types.AccountIDFromPrivateKey(alice), Free: 10 * types.RaoPerTAO}}}
	n, err := node.Open(node.Config{
		DataDir: dir, Genesis: g, Authority: authority,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:    func() time.Time { return time.UnixMilli(1_700_000_000_000) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer n.Close()

	tx := types.Tx{Nonce: 0, ValidUntil: 10, Call: types.Transfer{To: bob, Amount: 3 * types.RaoPerTAO}}
	tx.Sign(alice, n.ChainID())
	if _, err := n.Submit(&tx); err != nil {
		fmt.Println(err)
		return
	}
	var re *node.RejectError
	if _, err := n.Submit(&tx); errors.As(err, &re) {
		fmt.Println("submitted twice:", re.Code)
	}
	blk, err := n.ProduceBlock()
	if err != nil {
		fmt.Println(err)
		return
	}
	a, _ := state.QueryAccount(n.State(), types.AccountIDFromPrivateKey(alice))
	b, _ := state.QueryAccount(n.State(), bob)
	fmt.Printf("block %d with %d transaction\n", blk.Header.Height, len(blk.Txs))
	fmt.Printf("alice %d rao (nonce %d), bob %d rao\n", a.Free, a.Nonce, b.Free)
	// Output:
	// submitted twice: duplicate
	// block 1 with 1 transaction
	// alice 6999900000 rao (nonce 1), bob 3000000000 rao
}
