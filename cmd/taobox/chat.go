package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"

	"taobox/chain/types"
	"taobox/gateway"
	"taobox/model/gguf"
	"taobox/validator"
	"taobox/wallet"
)

// The OpenAI-compatible endpoint of a validator (package gateway): the
// client command `taobox chat`, and startOpenAI, which `taobox validator
// --openai ADDR` calls.

var chatCommand = &command{
	name:    "chat",
	args:    "--endpoint URL [--gateway HOTKEY] --wallet W (--hotkey H | --coldkey) [flags] PROMPT",
	summary: "ask a validator's OpenAI-compatible endpoint, signing with a staked key",
	help: "Sends PROMPT (\"-\": read it from stdin) to the OpenAI-compatible endpoint a\n" +
		"validator serves (taobox validator --openai ADDR) and streams the answer to\n" +
		"stdout as it arrives. The request is signed with the key named by --hotkey\n" +
		"(a hotkey of --wallet) or, with --coldkey, the wallet's coldkey; that\n" +
		"account must hold stake (as a coldkey, or staked to as a hotkey), and its\n" +
		"stake sets its rate limit. The request is signed for one validator's gateway\n" +
		"(--gateway: that validator's hotkey, which taobox validator --openai prints;\n" +
		"by default the endpoint is asked who it is), so no other validator accepts\n" +
		"it. By default the prompt is one user message of a\n" +
		"chat (/v1/chat/completions, --system adds a system message); --completion\n" +
		"sends it as a raw completion prompt instead. After the answer, stderr names\n" +
		"the miner that served it and whether its signed final frame verifies.\n" +
		"docs/openai.md shows the same requests with curl and the OpenAI SDKs.\n" +
		"Example:\n\n" +
		"  taobox chat --endpoint http://127.0.0.1:8090 --wallet alice --coldkey \"Tell me a story\"",
	minArgs: 1, maxArgs: 1,
	setup: func(fs *flag.FlagSet) func(*env) error {
		wallets := walletsFlag(fs)
		walletName := fs.String("wallet", "default", "the `NAME` of the wallet whose key signs")
		endpoint := fs.String("endpoint", "http://127.0.0.1:8090", "the `URL` of the validator's endpoint (taobox validator --openai)")
		gatewayID := fs.String("gateway", "", "the `HOTKEY` (SS58) of the validator whose endpoint --endpoint is; requests are signed for it (default: ask the endpoint)")
		hotkey := fs.String("hotkey", "", "sign with this hotkey `NAME` of the wallet")
		coldkey := fs.Bool("coldkey", false, "sign with the wallet's coldkey (the key that staked)")
		system := fs.String("system", "", "a system message before the prompt (chat only)")
		completion := fs.Bool("completion", false, "send PROMPT to /v1/completions as raw text, not as a chat message")
		maxTokens := fs.Int("max-tokens", 0, "the most tokens to generate (0: the endpoint's default)")
		temp := fs.Float64("temperature", 0.7, "sampling temperature; 0 is greedy")
		seed := fs.Int64("seed", -1, "sampling seed (-1: the endpoint picks one)")
		unlock := unlockFlags(fs)
		return func(e *env) error {
			base := strings.TrimRight(*endpoint, "/")
			if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return &usageError{"endpoint", fmt.Sprintf("%q is not an http(s) URL (for example http://127.0.0.1:8090)", *endpoint)}
			}
			base = strings.TrimSuffix(base, "/v1")
			if *coldkey == (*hotkey != "") {
				return &usageError{"hotkey", "name the signing key: --hotkey NAME or --coldkey (one of them)"}
			}
			if *maxTokens < 0 {
				return &usageError{"max-tokens", fmt.Sprintf("%d must be ≥ 0", *maxTokens)}
			}
			var gw types.AccountID
			if *gatewayID != "" {
				id, err := types.ParseAddress(*gatewayID)
				if err != nil {
					return &usageError{"gateway", fmt.Sprintf("%q is not an SS58 address: %v (the validator's hotkey, printed by taobox validator --openai)", *gatewayID, err)}
				}
				gw = id
			}
			prompt := e.args[0]
			if prompt == "-" {
				b, err := io.ReadAll(io.LimitReader(e.stdin, 1<<20))
				if err != nil {
					return fmt.Errorf("reading the prompt from stdin: %w", err)
				}
				prompt = string(b)
			}
			if strings.TrimSpace(prompt) == "" {
				return &usageError{"PROMPT", "empty"}
			}
			w, err := loadWallet(*wallets, *walletName)
			if err != nil {
				return err
			}
			w.Unlock = unlock.unlocker(e)
			var key ed25519.PrivateKey
			if *coldkey {
				if key, err = w.Coldkey(); errors.Is(err, wallet.ErrNotFound) {
					// Coldkey's hint is about transactions, which chat does not send.
					return fmt.Errorf("wallet %q holds only the coldkey's address on this machine: sign the request with a hotkey (--hotkey NAME, without --coldkey) or run chat where the coldkey is", w.Name)
				}
			} else {
				key, err = hotkeySigner(w, "hotkey", *hotkey)
			}
			if err != nil {
				return err
			}
			req := map[string]any{"temperature": *temp}
			if *maxTokens > 0 {
				req["max_tokens"] = *maxTokens
			}
			if *seed >= 0 {
				req["seed"] = *seed
			}
			path := "/v1/chat/completions"
			if *completion {
				path = "/v1/completions"
				req["prompt"] = prompt
			} else {
				var msgs []map[string]string
				if *system != "" {
					msgs = append(msgs, map[string]string{"role": "system", "content": *system})
				}
				req["messages"] = append(msgs, map[string]string{"role": "user", "content": prompt})
			}
			cl := &gateway.Client{BaseURL: base, Key: key, Gateway: gw}
			if gw == (types.AccountID{}) {
				id, err := cl.Identify(e.ctx)
				if err != nil {
					return fmt.Errorf("%w (or pass --gateway HOTKEY)", err)
				}
				fmt.Fprintf(e.stderr, "signing for gateway %s, as %s says it is (pass --gateway to pin the validator you mean)\n", id, base)
			}
			res, err := cl.Generate(e.ctx, path, req, func(s string) { io.WriteString(e.stdout, s) })
			if res != nil && res.Text != "" {
				fmt.Fprintln(e.stdout)
			}
			var se *gateway.StatusError
			if errors.As(err, &se) {
				return fmt.Errorf("%s refused the request: HTTP %d %s: %s", base, se.Status, se.Code, se.Message)
			}
			if err != nil {
				return err
			}
			signer := types.AccountIDFromPrivateKey(key)
			if p := res.Taobox; p != nil {
				verdict := "verifies"
				if err := p.Verify(); err != nil {
					verdict = "DOES NOT VERIFY: " + err.Error()
				}
				fmt.Fprintf(e.stderr, "answered by miner uid %d (%s) via validator %s after %d attempt(s): %d tokens, finish %s; its signed final frame %s (request %s…)\n",
					p.MinerUID, p.MinerHotkey, p.Validator, p.Attempts, p.Tokens, res.FinishReason, verdict, p.RequestHash[:min(16, len(p.RequestHash))])
			}
			fmt.Fprintf(e.stderr, "signed by %s\n", signer)
			return nil
		}
	},
}

// openAIOptions are the validator's --openai flags.
type openAIOptions struct {
	addr     string
	perTAO   float64 // requests per minute per TAO staked
	minStake uint64  // rao
	obs      *daemonObs
}

// startOpenAI serves the OpenAI-compatible endpoint of validator v on
// o.addr until the returned stop is called (or e.ctx ends). Stake is the
// coldkey's total stake from the node (GET /v1/account) and, for hotkeys
// registered on the subnet, the hotkey's stake from the metagraph.
func startOpenAI(e *env, o openAIOptions, v *validator.Validator, n *neuron, ch *nodeChain, netuid uint16) (stop func(), err error) {
	var tmpl string
	if n.mf.path != "" {
		if f, err := gguf.Open(n.mf.path); err == nil {
			if kv, ok := f.KV("tokenizer.chat_template"); ok {
				if s, ok := kv.Value.(string); ok {
					tmpl = s
				}
			}
			f.Close()
		}
	}
	g, err := gateway.New(gateway.Config{
		Key: n.key, Netuid: netuid, Chain: ch, Scores: v.Scores, Tokenizer: n.mf.tok, ModelHash: n.hash,
		ContextLen: n.mf.m.Config.SeqLen, ChatTemplate: tmpl, MinStake: o.minStake,
		Limits: gateway.RateLimits{PerTAOPerMinute: o.perTAO},
		Stake: func(ctx context.Context, id types.AccountID) (uint64, error) {
			a, err := n.c.account(ctx, id)
			if err != nil {
				return 0, err
			}
			return a.Staked, nil
		},
		Logger: o.obs.log.With("role", "openai"),
	})
	if err != nil {
		return nil, err
	}
	if err := o.obs.reg.Register(g.Collector()); err != nil {
		g.Close()
		return nil, fmt.Errorf("openai endpoint metrics: %w", err)
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		g.Close()
		return nil, &usageError{"openai", fmt.Sprintf("cannot listen on %q: %v", o.addr, err)}
	}
	fmt.Fprintf(e.stderr, "OpenAI-compatible endpoint on http://%s/v1 (model %s, chat template %s, gateway %s); callers sign with a staked key for this gateway (taobox chat --gateway %s, docs/openai.md)\n",
		ln.Addr(), g.ModelName(), g.Template(), g.ID(), g.ID())
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := g.Serve(ctx, ln); err != nil {
			fmt.Fprintf(e.stderr, "validator: openai endpoint: %v\n", err)
		}
	}()
	return func() {
		cancel()
		<-done
		g.Close()
	}, nil
}
