package consensus_test

import (
	"crypto/ed25519"
	"fmt"

	"taobox/chain/consensus"
	"taobox/chain/types"
)

// A single validator drives itself to a decision: the host loop reads
// Ready, persists, "sends", answers requests, then calls Advance.
func Example() {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	signer := consensus.Ed25519Signer{Key: key}
	vals, _ := consensus.NewValidatorSet([]consensus.Validator{{ID: signer.ID(), Stake: 10}})
	n, _ := consensus.NewNode(consensus.DefaultConfig(types.Hash{1}, vals, signer), nil)
	var persisted []byte
	for decided := false; !decided; {
		rd := n.Ready()
		decided = len(rd.Decided) > 0
		for _, d := range rd.Decided {
			fmt.Printf("decided height %d round %d: %q with %d signature(s)\n", d.Height, d.Round, d.Block, len(d.Cert.Sigs))
		}
		if rd.HardState != nil {
			persisted = consensus.EncodeHardState(rd.HardState) // fsync here, before sending
		}
		for _, m := range rd.Messages {
			_ = m // broadcast here
		}
		n.Advance(rd)
		if decided {
			break // height 2 starts; its value request stays unanswered here
		}
		for _, rv := range rd.RequestValue {
			n.Step(consensus.ValueReady{Height: rv.Height, Round: rv.Round, Block: []byte(fmt.Sprintf("block %d", rv.Height))})
		}
	}
	h, r, _ := n.Position()
	fmt.Println("now at height", h, "round", r, "persisted", len(persisted) > 0)
	// Output:
	// decided height 1 round 0: "block 1" with 1 signature(s)
	// now at height 2 round 0 persisted true
}
