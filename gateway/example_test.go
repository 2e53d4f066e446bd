package gateway_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"os"
	"time"

	"taobox/chain/types"
	"taobox/gateway"
)

// A signed request from any Go program: Sign sets the five X-Taobox-*
// headers over the exact body sent, for the validator whose endpoint it
// goes to (its hotkey; another validator's gateway refuses the request).
func ExampleSign() {
	key := ed25519.NewKeyFromSeed(make([]byte, 32)) // a staked account's key
	validator, _ := types.ParseAddress("5DQcDYQ3wwobcrJ5aE5CzGp34ZWYNeYfYZ1yLbPiU2RcSvwm")
	body := []byte(`{"messages":[{"role":"user","content":"Tell me a story"}],"max_tokens":64}`)
	req, _ := http.NewRequest("POST", "http://127.0.0.1:8090/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if err := gateway.Sign(req, body, validator, key, time.Now(), "a-fresh-nonce-every-time"); err != nil {
		panic(err)
	}
	fmt.Println(req.Header.Get(gateway.HeaderAccount))
	// Output: 5DQcDYQ3wwobcrJ5aE5CzGp34ZWYNeYfYZ1yLbPiU2RcSvwm
}

// Streaming a chat answer with the client taobox chat uses.
func ExampleClient_Generate() {
	cl := &gateway.Client{BaseURL: "http://127.0.0.1:8090", Key: ed25519.NewKeyFromSeed(make([]byte, 32))}
	res, err := cl.Generate(context.Background(), "/v1/chat/completions", map[string]any{
		"messages": []map[string]string{{"role": "user", "content": "Tell me a story"}},
	}, func(s string) { os.Stdout.WriteString(s) })
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Printf("\nminer uid %d, %d tokens, %s\n", res.Taobox.MinerUID, res.Taobox.Tokens, res.FinishReason)
}
