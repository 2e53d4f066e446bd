package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"taobox/chain/node"
	"taobox/chain/types"
)

// The client side of the node's local JSON API (chain/node, api.go): the
// response shapes the CLI reads, and one small HTTP client.

// EnvNode names the environment variable that sets the default --node.
const EnvNode = "TAOBOX_NODE"

// defaultNodeURL is where 'taobox node' serves its API unless told otherwise.
const defaultNodeURL = "http://127.0.0.1:7744"

// nodeFlag defines --node on fs.
func nodeFlag(fs *flag.FlagSet) *string {
	def := defaultNodeURL
	if v := os.Getenv(EnvNode); v != "" {
		def = v
	}
	return fs.String("node", def, "the `URL` of the node's API (taobox node --api, or the address taobox devnet prints; env "+EnvNode+")")
}

// apiClient talks to one node.
type apiClient struct {
	base string // "http://127.0.0.1:7744", no trailing slash
	hc   *http.Client
}

// newClient checks the --node value and returns a client for it. A bare
// host:port gets "http://".
func newClient(raw string) (*apiClient, error) {
	s := strings.TrimRight(strings.TrimSpace(raw), "/")
	if s != "" && !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &usageError{"node", fmt.Sprintf("%q is not a node URL (for example %s)", raw, defaultNodeURL)}
	}
	return &apiClient{base: s, hc: &http.Client{Timeout: 15 * time.Second}}, nil
}

// apiError is an error answer of the node.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// do sends a request and decodes a JSON answer into out (when non-nil).
// Error answers become *apiError with the node's message.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("cannot reach the node at %s (is 'taobox node' or 'taobox devnet' running there? set --node): %v", c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the node's answer to %s %s: %v", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return &apiError{resp.StatusCode, e.Error}
		}
		return &apiError{resp.StatusCode, fmt.Sprintf("the node answered %s to %s %s", resp.Status, method, path)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the node's answer to %s %s is not what this taobox expects (a different version?): %v", method, path, err)
	}
	return nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (c *apiClient) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

func (c *apiClient) head(ctx context.Context) (*node.HeadInfo, error) {
	var h node.HeadInfo
	return &h, c.get(ctx, "/v1/head", &h)
}

func (c *apiClient) account(ctx context.Context, id types.AccountID) (*node.AccountInfo, error) {
	var a node.AccountInfo
	return &a, c.get(ctx, "/v1/account/"+id.String(), &a)
}

func (c *apiClient) submit(ctx context.Context, tx *types.Tx) (types.Hash, error) {
	var out struct {
		Hash types.Hash `json:"hash"`
	}
	err := c.do(ctx, http.MethodPost, "/v1/tx", map[string]string{"tx": hex.EncodeToString(tx.Encode())}, &out)
	return out.Hash, err
}

// txStatus returns the status of a transaction; an unknown one (404) is
// {Status: "unknown", Error: why} without an error.
func (c *apiClient) txStatus(ctx context.Context, h types.Hash) (*node.TxStatus, error) {
	var st node.TxStatus
	err := c.get(ctx, "/v1/tx/"+h.String(), &st)
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusNotFound {
		return &node.TxStatus{Status: "unknown", Hash: h, Error: ae.msg}, nil
	}
	return &st, err
}
