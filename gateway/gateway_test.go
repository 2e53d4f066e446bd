package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"taobox/chain/types"
	"taobox/model"
	"taobox/task"
)

// post sends a signed JSON request and decodes the answer into out (a
// *Response on 200, else the error body); it returns the response.
func post(t *testing.T, cl *Client, path string, req any, out any) *http.Response {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cl.Do(context.Background(), "POST", path, b)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s: status %d, body %q: %v", path, resp.StatusCode, data, err)
		}
	}
	return resp
}

// expectError checks an error answer's status and code.
func expectError(t *testing.T, resp *http.Response, eb *ErrorBody, status int, code string) {
	t.Helper()
	if resp.StatusCode != status || eb.Error.Code != code {
		t.Fatalf("got %d %q (%s), want %d %q", resp.StatusCode, eb.Error.Code, eb.Error.Message, status, code)
	}
	if eb.Error.Message == "" || eb.Error.Type == "" {
		t.Fatalf("error without message or type: %+v", eb.Error)
	}
}

// greedy is what the tiny model answers to prompt at temperature 0 with at
// most n tokens, as text (what the miners must have sent).
func greedy(t *testing.T, tok *model.Tokenizer, prompt string, n int) (string, int) {
	t.Helper()
	m, _ := loadTiny(t)
	g, err := m.GenerateSampled(tok.Encode(prompt, true), model.GenerateOptions{MaxTokens: n, EOS: tok.EOS()})
	if err != nil {
		t.Fatal(err)
	}
	d := detok{tok: tok}
	var s string
	for _, id := range g.IDs {
		s += d.push(id)
	}
	return s + d.flush(), len(g.IDs)
}

// checkProvenance verifies the miner's signed final frame the response
// carries and that the miner is the one expected.
func checkProvenance(t *testing.T, p *Provenance, want Candidate, tokens int) {
	t.Helper()
	if p == nil {
		t.Fatal("no taobox provenance field")
	}
	if p.MinerUID != want.UID || p.MinerHotkey != want.Hotkey || p.Validator != idN(kValidator) || int(p.Tokens) != tokens {
		t.Fatalf("provenance %+v, want miner uid %d %s, %d tokens", p, want.UID, want.Hotkey, tokens)
	}
	if err := p.Verify(); err != nil {
		t.Fatal(err)
	}
	bad := *p
	bad.Tokens++
	if bad.Verify() == nil {
		t.Fatal("a provenance with another token count verified")
	}
}

// A provenance whose signature covers a batch of final frames verifies
// with its proof, and not with another leaf's proof or none.
func TestProvenanceBatched(t *testing.T) {
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	var hk types.AccountID
	copy(hk[:], k.Public().(ed25519.PublicKey))
	req, res := [32]byte{1}, [32]byte{2}
	msgs := [][]byte{task.FinalSigningBytes([32]byte{9}, 1, res), task.FinalSigningBytes(req, 3, res), task.FinalSigningBytes(req, 4, res)}
	sig, proofs := task.SignBatch(k, msgs)
	p := Provenance{MinerHotkey: hk, RequestHash: hex.EncodeToString(req[:]), ResultHash: hex.EncodeToString(res[:]),
		FinalSignature: hex.EncodeToString(sig[:]), BatchProof: hex.EncodeToString(proofs[1].Bytes()), Tokens: 3}
	if err := p.Verify(); err != nil {
		t.Fatal(err)
	}
	for name, proof := range map[string]string{"none": "", "another leaf": hex.EncodeToString(proofs[2].Bytes()), "malformed": "00", "not hex": "zz"} {
		bad := p
		bad.BatchProof = proof
		if bad.Verify() == nil {
			t.Errorf("batch proof %s: verified", name)
		}
	}
}

// TestGatewayOverQUIC runs the gateway in front of a validator and two real
// miners on loopback: completions and chat, whole and streamed, the
// authentication and stake rules, the rate limit, and fallback.
func TestGatewayOverQUIC(t *testing.T) {
	n := startNet(t, nil)
	cands := n.candidates()
	if len(cands) != 2 {
		t.Fatalf("candidates %+v, want both miners", cands)
	}
	holder := n.client(kHolder)
	const prompt = "Once upon a time"
	want, wantN := greedy(t, n.tok, prompt, 12)
	t.Logf("greedy answer: %q (%d tokens)", want, wantN)

	t.Run("models", func(t *testing.T) {
		resp, err := http.Get(n.url + "/v1/models")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ml ModelList
		if err := json.NewDecoder(resp.Body).Decode(&ml); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%d %v", resp.StatusCode, err)
		}
		if len(ml.Data) != 1 || ml.Data[0].ID != n.gw.ModelName() || ml.Data[0].SHA256 != hex.EncodeToString(n.hash[:]) || ml.Data[0].Context != 128 {
			t.Fatalf("models %+v", ml)
		}
	})

	t.Run("completion", func(t *testing.T) {
		var r struct {
			Response
			Choices []CompletionChoice `json:"choices"`
		}
		resp := post(t, holder, "/v1/completions", map[string]any{"model": n.gw.ModelName(), "prompt": prompt, "max_tokens": 12, "temperature": 0, "logprobs": 2}, &r)
		if resp.StatusCode != 200 || len(r.Choices) != 1 {
			t.Fatalf("status %d, %+v", resp.StatusCode, r)
		}
		c := r.Choices[0]
		if c.Text != want || r.Object != "text_completion" || !strings.HasPrefix(r.ID, "cmpl-") {
			t.Fatalf("text %q object %q id %q, want %q", c.Text, r.Object, r.ID, want)
		}
		if r.Usage == nil || r.Usage.CompletionTokens != wantN || r.Usage.PromptTokens != len(n.tok.Encode(prompt, true)) {
			t.Fatalf("usage %+v", r.Usage)
		}
		if c.Logprobs == nil || len(c.Logprobs.TokenLogprobs) != wantN || len(c.Logprobs.TopLogprobs[0]) == 0 {
			t.Fatalf("logprobs %+v", c.Logprobs)
		}
		for i, lp := range c.Logprobs.TokenLogprobs {
			if lp > 0 || c.Logprobs.TextOffset[i] > len(c.Text) {
				t.Fatalf("token %d: logprob %v offset %d", i, lp, c.Logprobs.TextOffset[i])
			}
		}
		if resp.Header.Get("X-Taobox-Miner-Uid") == "" {
			t.Fatal("no X-Taobox-Miner-Uid header")
		}
		checkProvenance(t, r.Taobox, cands[0], wantN)
	})

	t.Run("completion stream", func(t *testing.T) {
		var pieces []string
		res, err := holder.Generate(context.Background(), "/v1/completions", map[string]any{"prompt": prompt, "max_tokens": 12, "temperature": 0, "stream_options": map[string]bool{"include_usage": true}}, func(s string) { pieces = append(pieces, s) })
		if err != nil {
			t.Fatal(err)
		}
		if res.Text != want || strings.Join(pieces, "") != want || len(pieces) < 2 {
			t.Fatalf("streamed %q in %d pieces, want %q in several", res.Text, len(pieces), want)
		}
		if res.Usage == nil || res.Usage.CompletionTokens != wantN || res.FinishReason == "" {
			t.Fatalf("usage %+v finish %q", res.Usage, res.FinishReason)
		}
		checkProvenance(t, res.Taobox, cands[0], wantN)
	})

	chatReq := map[string]any{"messages": []map[string]any{{"role": "system", "content": "You tell stories."}, {"role": "user", "content": "Tell me about a cat."}}, "max_tokens": 20, "temperature": 0}
	var chatText string
	t.Run("chat", func(t *testing.T) {
		var r struct {
			Response
			Choices []ChatChoice `json:"choices"`
		}
		resp := post(t, holder, "/v1/chat/completions", chatReq, &r)
		if resp.StatusCode != 200 || len(r.Choices) != 1 || r.Choices[0].Message == nil {
			t.Fatalf("status %d, %+v", resp.StatusCode, r)
		}
		m := r.Choices[0].Message
		chatText = m.Content
		if m.Role != "assistant" || r.Object != "chat.completion" || r.Choices[0].FinishReason == nil {
			t.Fatalf("%+v", r)
		}
		// the same prompt, rendered by hand, through the completions endpoint
		p, stops := templatePlain.Render([]Message{{"system", "You tell stories."}, {"user", "Tell me about a cat."}})
		var rc struct {
			Choices []CompletionChoice `json:"choices"`
		}
		post(t, holder, "/v1/completions", map[string]any{"prompt": p, "max_tokens": 20, "temperature": 0, "stop": stops}, &rc)
		if got := strings.TrimLeft(rc.Choices[0].Text, " \t\n"); got != chatText {
			t.Fatalf("chat %q, the rendered prompt as a completion %q", chatText, got)
		}
		checkProvenance(t, r.Taobox, cands[0], int(r.Taobox.Tokens))
	})

	t.Run("chat stream", func(t *testing.T) {
		res, err := holder.Generate(context.Background(), "/v1/chat/completions", chatReq, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Text != chatText {
			t.Fatalf("streamed %q, whole %q", res.Text, chatText)
		}
		checkProvenance(t, res.Taobox, cands[0], int(res.Taobox.Tokens))
	})

	t.Run("refusals", func(t *testing.T) {
		body := []byte(`{"prompt":"hi","max_tokens":2}`)
		send := func(r *http.Request) (*http.Response, ErrorBody) {
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb ErrorBody
			json.NewDecoder(resp.Body).Decode(&eb)
			return resp, eb
		}
		signedFor := func(gw types.AccountID, k int, now time.Time, nonce string, b []byte) *http.Request {
			r, _ := http.NewRequest("POST", n.url+"/v1/completions", bytes.NewReader(b))
			if err := Sign(r, b, gw, keyN(k), now, nonce); err != nil {
				t.Fatal(err)
			}
			return r
		}
		signed := func(k int, now time.Time, nonce string, b []byte) *http.Request {
			return signedFor(n.gw.ID(), k, now, nonce, b)
		}
		r, _ := http.NewRequest("POST", n.url+"/v1/completions", bytes.NewReader(body))
		resp, eb := send(r)
		expectError(t, resp, &eb, 401, "unsigned")

		r = signed(kHolder, n.clock.now(), "tampered-body-nonce-1", body)
		r.Body = io.NopCloser(bytes.NewReader([]byte(`{"prompt":"hi","max_tokens":3}`)))
		resp, eb = send(r)
		expectError(t, resp, &eb, 401, "bad_signature")

		r = signed(kHolder, n.clock.now(), "garbled-account-0001", body)
		r.Header.Set(HeaderAccount, "5notanaddress")
		resp, eb = send(r)
		expectError(t, resp, &eb, 401, "bad_auth_header")

		r = signed(kHolder, n.clock.now().Add(-time.Minute), "stale-nonce-00000001", body)
		resp, eb = send(r)
		expectError(t, resp, &eb, 401, "stale_timestamp")
		r = signed(kHolder, n.clock.now().Add(time.Minute), "future-nonce-0000001", body)
		resp, eb = send(r)
		expectError(t, resp, &eb, 401, "stale_timestamp")

		now := n.clock.now()
		first, again := signed(kHolder, now, "replayed-nonce-00001", body), signed(kHolder, now, "replayed-nonce-00001", body)
		if resp, eb = send(first); resp.StatusCode != 200 {
			t.Fatalf("the first use of a nonce: %d %+v", resp.StatusCode, eb)
		}
		resp, eb = send(again)
		expectError(t, resp, &eb, 401, "replayed_nonce")

		// Cross-gateway replay: a request the caller signed for another
		// validator's gateway (which saw it, or anyone on the way did) is
		// refused here, fresh nonce and all; re-addressing it to this
		// gateway in the header breaks the signature.
		other := idN(kMiner1)
		resp, eb = send(signedFor(other, kHolder, n.clock.now(), "other-gateway-nonce1", body))
		expectError(t, resp, &eb, 401, "wrong_gateway")
		if !strings.Contains(eb.Error.Message, types.SS58Encode(n.gw.ID())) {
			t.Errorf("the refusal does not name this gateway: %q", eb.Error.Message)
		}
		r = signedFor(other, kHolder, n.clock.now(), "other-gateway-nonce2", body)
		r.Header.Set(HeaderGateway, types.SS58Encode(n.gw.ID()))
		resp, eb = send(r)
		expectError(t, resp, &eb, 401, "bad_signature")
		if got := resp.Header.Get(HeaderGateway); got != types.SS58Encode(n.gw.ID()) {
			t.Errorf("%s = %q, want this gateway's hotkey", HeaderGateway, got)
		}

		resp, eb = send(signed(kPoor, n.clock.now(), "no-stake-nonce-00001", body))
		expectError(t, resp, &eb, 403, "insufficient_stake")
		// The refused request's nonce was not stored (keys without stake
		// cannot fill the replay cache): the same nonce is refused for the
		// stake again, not as a replay.
		resp, eb = send(signed(kPoor, n.clock.now(), "no-stake-nonce-00001", body))
		expectError(t, resp, &eb, 403, "insufficient_stake")

		var e ErrorBody
		resp = post(t, holder, "/v1/completions", map[string]any{"prompt": "hi", "n": 2}, &e)
		expectError(t, resp, &e, 400, "invalid_value")
		resp = post(t, holder, "/v1/completions", map[string]any{"prompt": "hi", "model": "gpt-4"}, &e)
		expectError(t, resp, &e, 404, "model_not_found")
		resp = post(t, holder, "/v1/completions", map[string]any{"prompt": strings.Repeat("a story ", 200)}, &e)
		expectError(t, resp, &e, 400, "context_length_exceeded")
		big := map[string]any{"prompt": strings.Repeat("x", 2<<20)}
		resp = post(t, holder, "/v1/completions", big, &e)
		expectError(t, resp, &e, 413, "body_too_large")
	})

	t.Run("rate limit", func(t *testing.T) {
		small := n.client(kSmall) // 1 TAO: one request a minute, bursts of 1
		bad := map[string]any{"prompt": 7}
		var e ErrorBody
		resp := post(t, small, "/v1/completions", bad, &e)
		expectError(t, resp, &e, 400, "invalid_value") // admitted: it spent the token
		resp = post(t, small, "/v1/completions", bad, &e)
		expectError(t, resp, &e, 429, "rate_limit_exceeded")
		if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Fatalf("Retry-After %q", ra)
		}
		n.clock.advance(61 * time.Second)
		defer n.clock.advance(-61 * time.Second)
		resp = post(t, small, "/v1/completions", bad, &e)
		expectError(t, resp, &e, 400, "invalid_value") // the bucket refilled
	})

	t.Run("fallback", func(t *testing.T) {
		cands := n.candidates()
		n.setFail(cands[0].UID, true)
		defer n.setFail(cands[0].UID, false)
		var r struct {
			Response
			Choices []CompletionChoice `json:"choices"`
		}
		resp := post(t, holder, "/v1/completions", map[string]any{"prompt": prompt, "max_tokens": 12, "temperature": 0}, &r)
		if resp.StatusCode != 200 || r.Choices[0].Text != want {
			t.Fatalf("status %d %+v", resp.StatusCode, r)
		}
		checkProvenance(t, r.Taobox, cands[1], wantN)
		if r.Taobox.Attempts != 2 {
			t.Fatalf("attempts %d, want 2", r.Taobox.Attempts)
		}
		res, err := holder.Generate(context.Background(), "/v1/completions", map[string]any{"prompt": prompt, "max_tokens": 12, "temperature": 0}, nil)
		if err != nil || res.Text != want {
			t.Fatalf("streamed after a failure: %v %+v", err, res)
		}
		checkProvenance(t, res.Taobox, cands[1], wantN)

		n.setFail(cands[1].UID, true)
		defer n.setFail(cands[1].UID, false)
		_, err = holder.Generate(context.Background(), "/v1/completions", map[string]any{"prompt": prompt, "max_tokens": 4}, nil)
		var se *StatusError
		if !errors.As(err, &se) || se.Status != 502 || se.Code != "miners_failed" || !strings.Contains(se.Message, "internal") {
			t.Fatalf("every miner failing: %v", err)
		}
	})

	t.Run("failure mid-answer", func(t *testing.T) {
		cands := n.candidates()
		n.setFailAfter(cands[0].UID, 3)
		defer n.setFail(cands[0].UID, false)
		// whole answers: the broken one is dropped and the next miner's sent
		var r struct {
			Response
			Choices []CompletionChoice `json:"choices"`
		}
		resp := post(t, holder, "/v1/completions", map[string]any{"prompt": prompt, "max_tokens": 12, "temperature": 0}, &r)
		if resp.StatusCode != 200 || r.Choices[0].Text != want {
			t.Fatalf("status %d %+v", resp.StatusCode, r)
		}
		checkProvenance(t, r.Taobox, cands[1], wantN)
		// streams: the caller has seen part of the answer, so the stream ends
		// with an error event instead of a silent switch of miner
		var seen strings.Builder
		res, err := holder.Generate(context.Background(), "/v1/completions", map[string]any{"prompt": prompt, "max_tokens": 12, "temperature": 0}, func(s string) { seen.WriteString(s) })
		if err == nil || !strings.Contains(err.Error(), "miner_failed") || res == nil || res.Text == "" || !strings.HasPrefix(want, res.Text) || seen.String() != res.Text {
			t.Fatalf("a stream broken after 3 tokens: %v, %+v, seen %q", err, res, seen.String())
		}
	})

	t.Run("metrics", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(n.gw.Collector())
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				name := mf.GetName()
				for _, l := range m.GetLabel() {
					name += "/" + l.GetValue()
				}
				got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
		for name, want := range map[string]float64{
			"taobox_gateway_refused_total/replayed_nonce":      1,
			"taobox_gateway_refused_total/rate_limit_exceeded": 1,
			"taobox_gateway_refused_total/miners_failed":       1,
			"taobox_gateway_broken_streams_total":              1,
		} {
			if got[name] != want {
				t.Errorf("%s = %v, want %v", name, got[name], want)
			}
		}
		if got["taobox_gateway_answers_total/stream"] < 3 || got["taobox_gateway_answers_total/whole"] < 4 || got["taobox_gateway_miner_failures_total"] < 5 || got["taobox_gateway_tokens_total"] < 50 {
			t.Errorf("counters %v", got)
		}
	})

	t.Run("no stake is checked per account", func(t *testing.T) {
		// the validator's own hotkey holds stake as a hotkey
		st, err := n.chain.stake(context.Background(), types.AccountIDFromPrivateKey(keyN(kValidator)))
		if err != nil || st < 100*types.RaoPerTAO {
			t.Fatalf("validator hotkey stake %d, %v", st, err)
		}
		res, err := n.client(kValidator).Generate(context.Background(), "/v1/completions", map[string]any{"prompt": prompt, "max_tokens": 3, "temperature": 0}, nil)
		if err != nil || res.Usage != nil && res.Usage.CompletionTokens == 0 {
			t.Fatalf("%v %+v", err, res)
		}
	})
}
