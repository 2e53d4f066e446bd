package validator

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"taobox/chain/state"
	"taobox/chain/types"
	"taobox/miner"
	"taobox/task"
)

// TestRoundOverQUIC runs a round against real miners (package miner) on
// loopback QUIC, with the real state machine as the chain both sides read:
// an honest miner, one answering random tokens and one running another
// model. The honest one passes, the cheaters fail, and the weights the
// chain stores go to the honest one only.
func TestRoundOverQUIC(t *testing.T) {
	c, _ := chainNet(t, func(h *state.Hyperparams) { h.Tempo, h.WeightsRateLimit, h.ServingRateLimit = 10, 3, 0 }, "honest", "random", "other-model")
	// the validator needs stake and, after an epoch, a permit
	c.send(keyN(100), types.AddStake{Hotkey: types.AccountIDFromPrivateKey(keyN(0)), Amount: 100 * types.RaoPerTAO})
	for range 22 {
		c.block()
	}
	if mg, _ := c.Metagraph(1); !mg.Neurons[0].Permit {
		t.Fatal("the validator has no permit after two epochs")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := []int{DefaultEOS}
	answers := []miner.AnswerFunc{nil, miner.RandomAnswer(fix.val.Config.VocabSize, 1), miner.OtherModelAnswer(fix.synth, stop)}
	for i, ans := range answers {
		uid := i + 1
		mdl, _, err := loadTiny()
		if err != nil {
			t.Fatal(err)
		}
		m, err := miner.New(miner.Config{Key: keyN(uid), Netuid: 1, Model: mdl, ModelHash: fix.hash, StopIDs: stop, Chain: c, Answer: ans})
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- m.Serve(ctx, pc) }()
		t.Cleanup(func() { cancel(); <-done })
		<-m.Ready()
		port := uint16(pc.LocalAddr().(*net.UDPAddr).Port)
		hk := types.AccountIDFromPrivateKey(keyN(uid))
		c.send(keyN(uid), types.Serve{Netuid: 1, Host: "127.0.0.1", Port: port, TLSKey: hk})
	}
	c.block()
	if len(c.failed) > 0 {
		t.Fatalf("setup calls failed: %v", c.failed)
	}
	client := task.NewClient(keyN(0), 1, task.ClientOptions{Timeout: 10 * time.Second})
	defer client.Close()
	v, err := New(Config{
		Key: keyN(0), Netuid: 1, Model: fix.val, Tokenizer: fix.tok, ModelHash: fix.hash,
		Chain: c, Submit: func(call types.Call) error { c.send(keyN(0), call); return nil },
		Client: client, Deadline: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := v.Round(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint16]string{1: "", 2: "mismatch", 3: "mismatch"}
	for _, m := range rep.Miners {
		t.Logf("uid %d pass=%v tokens=%d tok/s=%.0f maxdiff=%.3g score=%.3f %s", m.UID, m.Pass, m.Tokens, m.TokensPerSec, m.MaxDiff, m.Score, m.Reason)
		if w := want[m.UID]; m.Pass != (w == "") || !strings.Contains(m.Reason, w) {
			t.Errorf("uid %d: pass=%v %q, want %q", m.UID, m.Pass, m.Reason, w)
		}
		if want[m.UID] == "" && (m.Passed != m.Tasks || m.Answered != m.Tasks) || want[m.UID] != "" && m.Passed == m.Tasks {
			t.Errorf("uid %d: %d tasks, %d answered, %d passed (want %q)", m.UID, m.Tasks, m.Answered, m.Passed, want[m.UID])
		}
	}
	if len(rep.Miners) != 3 {
		t.Fatalf("%d miners queried", len(rep.Miners))
	}
	for range 8 {
		if _, err := v.MaybeSetWeights(c.Height()); err != nil {
			t.Fatal(err)
		}
		c.block()
	}
	if len(c.failed) > 0 {
		t.Fatalf("the chain refused: %v", c.failed)
	}
	mg, _ := c.Metagraph(1)
	if row := mg.Neurons[0].Weights; len(row) != 1 || row[0].UID != 1 || row[0].Value != 65535 {
		t.Fatalf("stored weights %v, want all on uid 1", row)
	}
}
