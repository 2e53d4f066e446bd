package p2p_test

import (
	"context"
	"crypto/rand"
	"fmt"

	"taobox/chain/p2p"
	"taobox/chain/types"
)

// echo is a minimal Handler: it prints gossip and echoes header requests.
type echo struct{}

func (echo) Gossip(from p2p.PeerID, t types.MsgType, payload []byte) error {
	fmt.Printf("gossip %s %q\n", t, payload)
	return nil
}

func (echo) Serve(_ context.Context, _ p2p.PeerID, t types.MsgType, payload []byte) ([]byte, error) {
	if t == types.ReqHeaders {
		return append([]byte("headers after "), payload...), nil
	}
	return nil, p2p.ErrNotFound
}

func (echo) Status() p2p.Status { return p2p.Status{Head: 1} }

// Two hosts on loopback: one dials the other by "id@host:port", then they
// exchange a request and a gossip message. (Real sockets: compiled, not
// run, by go test.)
func Example() {
	genesis := types.Hash{1}
	mk := func() *p2p.Host {
		_, key, _ := types.GenerateKey(rand.Reader)
		h, err := p2p.New(p2p.Config{Key: key, ChainID: genesis, Listen: "127.0.0.1:0"}, echo{})
		if err != nil {
			panic(err)
		}
		h.Start(context.Background())
		return h
	}
	a, b := mk(), mk()
	defer a.Close()
	defer b.Close()

	ctx := context.Background()
	id, err := a.Connect(ctx, b.ID().String()+"@"+b.Addr().String())
	if err != nil {
		panic(err)
	}
	resp, err := a.Request(ctx, id, types.ReqHeaders, []byte("100"))
	fmt.Printf("%s %v\n", resp, err)
	a.Broadcast(types.MsgTx, []byte("a tx"))
}
