package main

// Offline signing: the coldkey stays on a machine that never talks to a
// node. There, 'taobox tx ... --offline --nonce N --valid-until B
// --chain-id HEX --out FILE' signs the transaction into FILE; on a machine
// with a node, 'taobox tx submit FILE' checks and sends it.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"taobox/chain/types"
	"taobox/wallet"
)

// offlineOpts are the --offline flags of every tx command.
type offlineOpts struct {
	offline    *bool
	nonce      *optUint
	validUntil *optUint
	chainID    *string
	out        *string
}

func offlineFlags(fs *flag.FlagSet) *offlineOpts {
	o := &offlineOpts{
		offline:    fs.Bool("offline", false, "sign without a node into --out FILE, for 'taobox tx submit FILE' elsewhere"),
		nonce:      &optUint{max: math.MaxUint64},
		validUntil: &optUint{max: math.MaxUint64},
		chainID:    fs.String("chain-id", "", "with --offline: the chain's `HEX` id (the genesis hash; chain_id in GET /v1/head)"),
		out:        fs.String("out", "", "with --offline: write the signed transaction to `FILE`"),
	}
	fs.Var(o.nonce, "nonce", "with --offline: the signer's next nonce `N` (pending_nonce in taobox wallet show --node, or GET /v1/account/ADDR)")
	fs.Var(o.validUntil, "valid-until", "with --offline: the last block `B` that may include it (at most 256 past the head when submitted)")
	return o
}

func (o *offlineOpts) on() bool { return o != nil && *o.offline }

// validate checks the --offline flags before any key is unlocked.
func (o *offlineOpts) validate() error {
	if o == nil {
		return nil
	}
	if !*o.offline {
		if o.nonce.set || o.validUntil.set || *o.chainID != "" || *o.out != "" {
			return &usageError{"offline", "--nonce, --valid-until, --chain-id and --out go with --offline"}
		}
		return nil
	}
	if err := need("nonce", o.nonce, "valid-until", o.validUntil, "chain-id", o.chainID, "out", o.out); err != nil {
		return err
	}
	if _, err := types.ParseHash(*o.chainID); err != nil {
		return &usageError{"chain-id", "want the 64 hex digits of chain_id in the node's GET /v1/head"}
	}
	if _, err := os.Lstat(*o.out); err == nil {
		return &usageError{"out", *o.out + " exists; it is never overwritten"}
	}
	return nil
}

// signedTxFile is the JSON of a transaction signed offline. Only Tx is
// authoritative; the other fields repeat what it holds, for a person to
// review before submitting, and are checked against it.
type signedTxFile struct {
	Kind       string `json:"kind"`
	Signer     string `json:"signer"`
	Nonce      uint64 `json:"nonce"`
	ValidUntil uint64 `json:"valid_until"`
	ChainID    string `json:"chain_id"`
	Hash       string `json:"hash"`
	Tx         string `json:"tx"` // hex of types.Tx.Encode()
}

// maxSignedTxFile bounds what tx submit reads.
const maxSignedTxFile = 4*types.MaxTxSize + 4096

// signOffline signs p for the chain and nonce the flags give and writes
// the file; it contacts no node. Plans that keep local state (weights
// commits) are refused: run those where they are submitted.
func signOffline(e *env, o *offlineOpts, p *txPlan) error {
	if p.before != nil || p.after != nil {
		return &usageError{"offline", "this command keeps local state next to the wallet (a weights commit); run it on the machine that submits"}
	}
	if err := types.ValidateCall(p.call); err != nil {
		return &usageError{"call", strings.TrimPrefix(err.Error(), "types: ")}
	}
	chainID, _ := types.ParseHash(*o.chainID)
	tx := &types.Tx{Nonce: o.nonce.v, ValidUntil: o.validUntil.v, Call: p.call}
	tx.Sign(p.signer, chainID)
	f := signedTxFile{Kind: p.call.Kind().String(), Signer: tx.Signer.String(), Nonce: tx.Nonce, ValidUntil: tx.ValidUntil,
		ChainID: chainID.String(), Hash: tx.Hash().String(), Tx: hex.EncodeToString(tx.Encode())}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := wallet.WriteFileAtomic(*o.out, append(data, '\n'), false); err != nil {
		return &usageError{"out", strings.TrimPrefix(err.Error(), "wallet: ")}
	}
	var b bytes.Buffer
	for _, n := range p.notes {
		fmt.Fprintln(&b, n)
	}
	fmt.Fprintf(&b, "%s %s signed offline into %s\n  signer %s, nonce %d, valid until block %d, chain %s\n"+
		"  submit it from a machine with a node: taobox tx submit %s --node URL\n",
		f.Kind, f.Hash, *o.out, f.Signer, f.Nonce, f.ValidUntil, f.ChainID, *o.out)
	_, err = e.stdout.Write(b.Bytes())
	return err
}

// decodeSignedTxFile parses a signed-transaction file and checks that its
// summary fields agree with its transaction. It does not check the
// signature (that needs the chain id the node reports).
func decodeSignedTxFile(data []byte) (*types.Tx, *signedTxFile, error) {
	if len(data) > maxSignedTxFile {
		return nil, nil, fmt.Errorf("%d bytes; a signed transaction file is at most %d", len(data), maxSignedTxFile)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f signedTxFile
	if err := dec.Decode(&f); err != nil {
		return nil, nil, fmt.Errorf("not a signed transaction file (taobox tx ... --offline --out): %v", err)
	}
	raw, err := hex.DecodeString(f.Tx)
	if err != nil {
		return nil, nil, fmt.Errorf("tx is not hex: %v", err)
	}
	tx, err := types.DecodeTx(raw)
	if err != nil {
		return nil, nil, err
	}
	if tx.Signer.String() != f.Signer || tx.Nonce != f.Nonce || tx.ValidUntil != f.ValidUntil ||
		tx.Call.Kind().String() != f.Kind || tx.Hash().String() != f.Hash {
		return nil, nil, errors.New("the summary fields do not match the transaction; the file was edited")
	}
	return tx, &f, nil
}

var txSubmitCommand = &command{
	name:    "tx submit",
	args:    "FILE [--node URL] [--wait=false]",
	minArgs: 1, maxArgs: 1,
	summary: "submit a transaction signed offline (tx ... --offline --out FILE)",
	help: "Reads a transaction that 'taobox tx ... --offline' signed on another machine\n" +
		"(the one holding the coldkey), checks it against the node (the chain id in\n" +
		"its signature, the signer's next nonce, the validity window), submits it and\n" +
		"by default waits until it is in a block. FILE - reads standard input.\n" +
		"Example:\n\n  taobox tx submit transfer.json --node http://127.0.0.1:7744",
	setup: func(fs *flag.FlagSet) func(*env) error {
		nodeURL := nodeFlag(fs)
		wait := fs.Bool("wait", true, "wait until the transaction is in a block and report its result (exit 1 if it failed)")
		return func(e *env) error {
			var r io.Reader = e.stdin
			if e.args[0] != "-" {
				f, err := os.Open(e.args[0])
				if err != nil {
					return &usageError{"file", err.Error()}
				}
				defer f.Close()
				r = f
			}
			data, err := io.ReadAll(io.LimitReader(r, maxSignedTxFile+1))
			if err != nil {
				return err
			}
			tx, f, err := decodeSignedTxFile(data)
			if err != nil {
				return &usageError{"file", err.Error()}
			}
			c, err := newClient(*nodeURL)
			if err != nil {
				return err
			}
			head, err := c.head(e.ctx)
			if err != nil {
				return err
			}
			if err := tx.Verify(head.ChainID); err != nil {
				return fmt.Errorf("the transaction is not signed for this node's chain %s (it names chain %s): %w", head.ChainID, f.ChainID, err)
			}
			acct, err := c.account(e.ctx, tx.Signer)
			if err != nil {
				return err
			}
			switch {
			case tx.Nonce < acct.PendingNonce:
				return fmt.Errorf("nonce %d is used already (the signer's next is %d); sign again with --nonce %d", tx.Nonce, acct.PendingNonce, acct.PendingNonce)
			case tx.ValidUntil < head.Height:
				return fmt.Errorf("expired: valid until block %d, the head is %d; sign again with a later --valid-until", tx.ValidUntil, head.Height)
			case tx.ValidUntil > head.Height+types.MaxValidityWindow:
				return fmt.Errorf("valid until block %d, more than %d past the head %d; the node will refuse it until block %d",
					tx.ValidUntil, types.MaxValidityWindow, head.Height, tx.ValidUntil-types.MaxValidityWindow)
			}
			return submitTx(e, c, tx, nil, nil, *wait)
		}
	},
}
