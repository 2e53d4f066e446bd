package types_test

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"

	"taobox/chain/types"
)

func ExampleSS58Encode() {
	pub, _ := hex.DecodeString("d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d")
	id := types.AccountIDFromPublicKey(pub)
	fmt.Println(types.SS58Encode(id))
	back, err := types.ParseAddress("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY")
	fmt.Println(back == id, err)
	// Output:
	// 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY
	// true <nil>
}

func ExampleTx_Sign() {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	genesis := types.HashBytes([]byte("genesis"))
	tx := types.Tx{Nonce: 0, ValidUntil: 256, Call: types.Transfer{Amount: 2 * types.RaoPerTAO}}
	tx.Sign(priv, genesis)

	got, err := types.DecodeTx(tx.Encode())
	if err != nil {
		panic(err)
	}
	fmt.Println(got.Verify(genesis) == nil, got.Call.Kind())
	fmt.Println(got.Verify(types.HashBytes([]byte("another chain"))) != nil)
	// Output:
	// true transfer
	// true
}
