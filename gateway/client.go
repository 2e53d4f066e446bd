package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"taobox/chain/types"
)

// Client calls a gateway with signed requests (what `taobox chat` uses).
// The zero value is not usable: set BaseURL and Key. Do may be called from
// several goroutines once the fields are set.
type Client struct {
	BaseURL string             // e.g. "http://127.0.0.1:8090"
	Key     ed25519.PrivateKey // the staked account's key
	// Gateway is the hotkey of the validator whose endpoint BaseURL is;
	// every request is signed for it, and another gateway refuses it. Zero:
	// the first Do calls Identify, which takes it from the endpoint's own
	// X-Taobox-Gateway header (trust on first use: set it from a source you
	// trust, such as the metagraph or the validator's operator, where that
	// matters).
	Gateway types.AccountID
	HTTP    *http.Client     // nil: a client without a timeout (streams are long)
	Now     func() time.Time // nil: time.Now
	Rand    io.Reader        // nonces; nil: crypto/rand

	mu sync.Mutex // guards Gateway once Do runs
}

// StatusError is a non-2xx answer of the gateway.
type StatusError struct {
	Status     int
	RetryAfter time.Duration // from Retry-After, if sent
	APIError
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("gateway: HTTP %d %s: %s", e.Status, e.Code, e.Message)
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %v)", e.RetryAfter)
	}
	return s
}

// NewNonce returns a fresh 22-character nonce from rnd.
func NewNonce(rnd io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", fmt.Errorf("gateway: nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Identify asks the endpoint which gateway it is (GET /v1/models, unsigned;
// the X-Taobox-Gateway header), sets c.Gateway and returns it.
func (c *Client) Identify(ctx context.Context) (types.AccountID, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+"/v1/models", nil)
	if err != nil {
		return types.AccountID{}, fmt.Errorf("gateway: %w", err)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return types.AccountID{}, fmt.Errorf("gateway: asking %s for its identity: %w", c.BaseURL, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	v := resp.Header.Get(HeaderGateway)
	if v == "" {
		return types.AccountID{}, fmt.Errorf("gateway: %s sent no %s header (not a taobox gateway, or an older one); name its validator hotkey instead", c.BaseURL, HeaderGateway)
	}
	if len(v) > maxAccountLen {
		return types.AccountID{}, fmt.Errorf("gateway: %s: %s header of %d characters", c.BaseURL, HeaderGateway, len(v))
	}
	id, err := types.ParseAddress(v)
	if err != nil {
		return types.AccountID{}, fmt.Errorf("gateway: %s: %s header: %w", c.BaseURL, HeaderGateway, err)
	}
	c.mu.Lock()
	c.Gateway = id
	c.mu.Unlock()
	return id, nil
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP == nil {
		return &http.Client{}
	}
	return c.HTTP
}

// Do sends a signed request with body (nil for none) to path (such as
// "/v1/chat/completions") and returns the response as is. The request is
// signed for c.Gateway (Identify fills it in first when it is zero).
func (c *Client) Do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	c.mu.Lock()
	gw := c.Gateway
	c.mu.Unlock()
	if gw == (types.AccountID{}) {
		var err error
		if gw, err = c.Identify(ctx); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	now, rnd := c.Now, c.Rand
	if now == nil {
		now = time.Now
	}
	if rnd == nil {
		rnd = crand.Reader
	}
	nonce, err := NewNonce(rnd)
	if err != nil {
		return nil, err
	}
	if err := Sign(req, body, gw, c.Key, now(), nonce); err != nil {
		return nil, err
	}
	return c.httpClient().Do(req)
}

// maxEventSize bounds one server-sent event line the client reads.
const maxEventSize = 1 << 20

// Chunk is one streamed event, for completions and chat alike.
type Chunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Choices []struct {
		Text         string     `json:"text"`
		Delta        ChatDelta  `json:"delta"`
		Message      *ChatDelta `json:"message"`
		FinishReason *string    `json:"finish_reason"`
	} `json:"choices"`
	Usage  *Usage      `json:"usage"`
	Taobox *Provenance `json:"taobox"`
	Error  *APIError   `json:"error"`
}

// Result is what Generate collected: the text, why it finished, and the
// provenance and usage the gateway sent.
type Result struct {
	Text         string
	FinishReason string
	Usage        *Usage
	Taobox       *Provenance
	MinerUID     string // the X-Taobox-Miner-Uid header
}

// Generate posts req (a completions or chat completions request object;
// "stream" is set to true) to path and calls onText with each piece of
// text as it arrives (onText may be nil). A non-2xx answer is a
// *StatusError; an error event in the stream ends it with an error.
func (c *Client) Generate(ctx context.Context, path string, req map[string]any, onText func(string)) (*Result, error) {
	body := map[string]any{}
	for k, v := range req {
		body[k] = v
	}
	body["stream"] = true
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("gateway: request: %w", err)
	}
	resp, err := c.Do(ctx, http.MethodPost, path, b)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, readStatusError(resp)
	}
	res, err := ReadStream(resp.Body, onText)
	if res != nil {
		res.MinerUID = resp.Header.Get("X-Taobox-Miner-Uid")
	}
	return res, err
}

// ReadStream reads server-sent events of a streamed completion from r
// until "data: [DONE]", calling onText (if not nil) with each piece of
// text. Lines over 1 MiB, events that are not JSON, and a stream that ends
// without [DONE] or a finish reason are errors; an error event ends the
// stream with an error and the text so far.
func ReadStream(r io.Reader, onText func(string)) (*Result, error) {
	res := &Result{}
	var text strings.Builder
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxEventSize)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue // blank separators, comments, other fields
		}
		if data == "[DONE]" {
			res.Text = text.String()
			if res.FinishReason == "" {
				return res, errors.New("gateway: stream ended without a finish reason")
			}
			return res, nil
		}
		var ch Chunk
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			return nil, fmt.Errorf("gateway: bad event %.80q: %w", data, err)
		}
		if ch.Error != nil {
			res.Text = text.String()
			return res, fmt.Errorf("gateway: stream failed after %d bytes: %s: %s", text.Len(), ch.Error.Code, ch.Error.Message)
		}
		for _, choice := range ch.Choices {
			piece := choice.Text + choice.Delta.Content
			text.WriteString(piece)
			if onText != nil && piece != "" {
				onText(piece)
			}
			if choice.FinishReason != nil {
				res.FinishReason = *choice.FinishReason
			}
		}
		if ch.Usage != nil {
			res.Usage = ch.Usage
		}
		if ch.Taobox != nil {
			res.Taobox = ch.Taobox
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("gateway: reading the stream: %w", err)
	}
	return nil, errors.New("gateway: stream ended without [DONE]")
}

func readStatusError(resp *http.Response) error {
	e := &StatusError{Status: resp.StatusCode}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	var eb ErrorBody
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err := json.Unmarshal(data, &eb); err != nil || eb.Error.Message == "" {
		e.Message = strings.TrimSpace(string(data))
		if e.Message == "" {
			e.Message = resp.Status
		}
		return e
	}
	e.APIError = eb.Error
	return e
}
