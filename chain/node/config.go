package node

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"taobox/chain/state"
	"taobox/chain/yuma"
)

// Defaults of Config.
const (
	DefaultBlockTime  = 12 * time.Second
	DefaultKeepBlocks = 7200 // 24 h of 12 s blocks

	DefaultProposeTimeout = 3 * time.Second
	DefaultVoteTimeout    = time.Second

	// MinStallWarn is the least default StallWarn.
	MinStallWarn = 10 * time.Second
)

// Config configures Open. Zero values of the optional fields select the
// documented defaults.
type Config struct {
	// DataDir is the directory of the goleveldb store; it is created if
	// needed. Required.
	DataDir string

	// Genesis is the chain's initial state. Required. On an existing data
	// dir its ID must equal the chain id of the stored blocks.
	Genesis *state.Genesis

	// Authority is the validator's ed25519 signing key: the hotkey of an
	// authority (the consensus key is the hotkey; a separately bound key is
	// future work). It signs proposals, votes and the headers it proposes.
	// Nil makes a follower, which verifies and applies finalized blocks
	// only. A key outside the current authority set also follows. With a
	// legacy genesis (no Genesis.Authorities) the key is required and is
	// the chain's only authority.
	Authority ed25519.PrivateKey

	// BlockTime is the interval between blocks: after a block is final the
	// next height's proposal waits until BlockTime has passed since the
	// previous commit (Tendermint's timeout_commit). If zero,
	// DefaultBlockTime (12 s) is used.
	BlockTime time.Duration

	// ProposeTimeout is how long a validator waits for the proposal of a
	// round (round r waits ProposeTimeout·(1+r/2)), counted after the
	// BlockTime wait in round 0. If zero, DefaultProposeTimeout (3 s).
	ProposeTimeout time.Duration

	// VoteTimeout is how long a validator waits for more votes once it
	// has votes from more than 2/3 (prevote and precommit steps; grows by
	// half per round). If zero, DefaultVoteTimeout (1 s).
	VoteTimeout time.Duration

	// Network carries gossip and requests to peers (chain/p2p implements
	// it). Nil: no peers, a lone validator.
	Network Network

	// APIAddr is the host:port of the local JSON API. "" serves no API;
	// port 0 picks a free port (see Node.APIAddr). The host must be a
	// loopback address ("127.0.0.1", "::1" or "localhost"): the API has
	// no authentication.
	APIAddr string

	// Logger receives the node's logs. If nil, slog.Default() is used.
	Logger *slog.Logger

	// Engine runs the Yuma epochs. If nil, the CPU engine on all cores.
	Engine yuma.Engine

	// Now is the clock for block timestamps. If nil, time.Now. Block
	// timestamps never go backwards: a block's TimeMs is at least its
	// parent's.
	Now func() time.Time

	// KeepBlocks is how many recent blocks keep their body and events
	// (the store's pruning window), and how far back GET /v1/tx/{hash}
	// finds transactions. If zero, DefaultKeepBlocks (7200) is used;
	// store.KeepAll keeps every block (an archive node).
	KeepBlocks uint64

	// Probe asks peers to connect back to an endpoint for POST /v1/probe
	// (cmd/taobox sets it to the p2p layer's ReqProbe client). Nil: the
	// endpoint answers verdict "no-peers".
	Probe ProbeFunc

	// Peers counts the p2p layer's connected peers for GET /v1/head
	// (cmd/taobox sets it with Network). Nil: the head leaves "peers" out.
	Peers func() int

	// StallWarn is how long the head may stay put before the node logs
	// that no block comes (then again at doubling intervals, at most every
	// 10 min). If zero, 5 block times but at least MinStallWarn: with the
	// devnet's sub-second blocks a busy machine's 2 s pause is no stall.
	StallWarn time.Duration

	// MempoolMax caps the pending transactions. If zero,
	// DefaultMempoolMax (10000) is used. Each account may have at most
	// PerAccountMax (64) pending, each at most types.MaxTxSize bytes.
	MempoolMax int
}

// Validate reports every problem of c at once. It does not change c.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("DataDir is required (the directory that holds the chain)"))
	}
	if c.Genesis == nil {
		errs = append(errs, errors.New("Genesis is required (the chain's genesis file)"))
	} else if err := c.Genesis.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Authority != nil && len(c.Authority) != ed25519.PrivateKeySize {
		errs = append(errs, fmt.Errorf("Authority must be an ed25519 private key of %d bytes, got %d bytes", ed25519.PrivateKeySize, len(c.Authority)))
	}
	if c.Authority == nil && c.Genesis != nil && len(c.Genesis.Authorities) == 0 {
		errs = append(errs, errors.New("Authority must be an ed25519 private key: the genesis lists no authorities, so this node's key is the chain's only authority (add authorities to the genesis to run followers)"))
	}
	if c.ProposeTimeout < 0 || c.VoteTimeout < 0 {
		errs = append(errs, fmt.Errorf("ProposeTimeout (%v) and VoteTimeout (%v) must not be negative (zero means %v and %v)", c.ProposeTimeout, c.VoteTimeout, DefaultProposeTimeout, DefaultVoteTimeout))
	}
	if c.BlockTime < 0 {
		errs = append(errs, fmt.Errorf("BlockTime (%v) must not be negative (zero means %v)", c.BlockTime, DefaultBlockTime))
	} else if c.BlockTime > 0 && c.BlockTime < time.Millisecond {
		errs = append(errs, fmt.Errorf("BlockTime (%v) must be at least 1ms", c.BlockTime))
	}
	if c.APIAddr != "" {
		if err := checkLoopback(c.APIAddr); err != nil {
			errs = append(errs, err)
		}
	}
	if c.StallWarn < 0 {
		errs = append(errs, fmt.Errorf("StallWarn (%v) must not be negative (zero means 5 block times, at least %v)", c.StallWarn, MinStallWarn))
	}
	if c.MempoolMax < 0 {
		errs = append(errs, fmt.Errorf("MempoolMax (%d) must not be negative (zero means %d)", c.MempoolMax, DefaultMempoolMax))
	}
	if len(errs) > 0 {
		return fmt.Errorf("node: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// withDefaults returns c with its zero fields filled.
func (c Config) withDefaults() Config {
	if c.BlockTime == 0 {
		c.BlockTime = DefaultBlockTime
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.KeepBlocks == 0 {
		c.KeepBlocks = DefaultKeepBlocks
	}
	if c.StallWarn == 0 {
		c.StallWarn = max(5*c.BlockTime, MinStallWarn)
	}
	if c.MempoolMax == 0 {
		c.MempoolMax = DefaultMempoolMax
	}
	if c.ProposeTimeout == 0 {
		c.ProposeTimeout = DefaultProposeTimeout
	}
	if c.VoteTimeout == 0 {
		c.VoteTimeout = DefaultVoteTimeout
	}
	return c
}

// checkLoopback reports whether addr is host:port with a loopback host.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("APIAddr %q must be host:port, for example 127.0.0.1:8650: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("APIAddr %q must be on a loopback address (127.0.0.1, ::1 or localhost): the API has no authentication", addr)
}
