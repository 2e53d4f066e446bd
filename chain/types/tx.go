package types

import (
	"crypto/ed25519"
	"errors"
	"fmt"
)

// Transaction encoding (all integers big-endian):
//
//	Tx   = Signer[32] ‖ Nonce u64 ‖ ValidUntil u64 ‖ Call ‖ Sig[64]
//	Call = kind u8 ‖ the call struct's fields in declaration order
//
// where an AccountID or Hash is 32 raw bytes, a string or []byte is a u32
// length and the bytes, a []uint16 is a u32 count and the values, a bool is
// one byte 0 or 1, and ProposalAction is its five fields in order (the two
// that the other action kind uses must be zero).

// MaxFirmwareVersionLen caps ProposalAction.FirmwareVersion.
const MaxFirmwareVersionLen = 64

// Domain tags: each signed or hashed message starts with its own, so no
// message of one kind can be taken for another.
const (
	txDomain     = "taobox/tx/v1"
	commitDomain = "taobox/commit/v1"
)

// ErrBadSignature marks a signature that does not verify.
var ErrBadSignature = errors.New("types: bad signature")

// EncodeCall writes c: its kind byte, then its fields in declaration order.
// c must be one of the call structs of this package as a value (Transfer,
// not *Transfer); anything else is a programmer error and panics. EncodeCall
// does not validate c (see ValidateCall): a call over its caps encodes, and
// DecodeCall then rejects it.
func EncodeCall(w *Writer, c Call) {
	switch c := c.(type) {
	case Transfer:
		w.U8(uint8(KindTransfer))
		w.Fixed(c.To[:])
		w.U64(c.Amount)
	case RegisterNetwork:
		w.U8(uint8(KindRegisterNetwork))
		w.Fixed(c.Hotkey[:])
	case SetHyperparam:
		w.U8(uint8(KindSetHyperparam))
		w.U16(uint16(c.Netuid))
		w.U8(uint8(c.Param))
		w.U64(c.Value)
	case BurnedRegister:
		w.U8(uint8(KindBurnedRegister))
		w.U16(uint16(c.Netuid))
		w.Fixed(c.Hotkey[:])
		w.U64(c.MaxPrice)
	case Serve:
		w.U8(uint8(KindServe))
		w.U16(uint16(c.Netuid))
		w.String(c.Host)
		w.U16(c.Port)
		w.Fixed(c.TLSKey[:])
	case AddStake:
		w.U8(uint8(KindAddStake))
		w.Fixed(c.Hotkey[:])
		w.U64(c.Amount)
	case RemoveStake:
		w.U8(uint8(KindRemoveStake))
		w.Fixed(c.Hotkey[:])
		w.U64(c.Amount)
	case SetTake:
		w.U8(uint8(KindSetTake))
		w.Fixed(c.Hotkey[:])
		w.U16(c.Take)
	case SetWeights:
		w.U8(uint8(KindSetWeights))
		w.U16(uint16(c.Netuid))
		writeU16s(w, c.UIDs)
		writeU16s(w, c.Weights)
		w.U64(c.VersionKey)
	case CommitWeights:
		w.U8(uint8(KindCommitWeights))
		w.U16(uint16(c.Netuid))
		w.Fixed(c.Commit[:])
	case RevealWeights:
		w.U8(uint8(KindRevealWeights))
		w.U16(uint16(c.Netuid))
		writeU16s(w, c.UIDs)
		writeU16s(w, c.Weights)
		w.VarBytes(c.Salt)
		w.U64(c.VersionKey)
	case SetRootWeights:
		w.U8(uint8(KindSetRootWeights))
		w.Fixed(c.Hotkey[:])
		writeU16s(w, c.Netuids)
		writeU16s(w, c.Weights)
	case Propose:
		w.U8(uint8(KindPropose))
		w.U8(uint8(c.Action.Kind))
		w.U8(uint8(c.Action.Param))
		w.U64(c.Action.Value)
		w.Fixed(c.Action.FirmwareHash[:])
		w.String(c.Action.FirmwareVersion)
		w.String(c.Description)
	case Vote:
		w.U8(uint8(KindVote))
		w.U64(c.Proposal)
		w.Bool(c.Aye)
	default:
		panic(fmt.Sprintf("types: EncodeCall of unsupported type %T (calls are value types such as types.Transfer)", c))
	}
}

func writeU16s(w *Writer, v []uint16) {
	w.Len(len(v))
	for _, x := range v {
		w.U16(x)
	}
}

// readU16s reads a u32 count (at most max) and that many u16 values; an
// empty list decodes as nil.
func readU16s(r *Reader, field string, max int) []uint16 {
	n := r.Len(field, max)
	b := r.take(field, 2*n)
	if n == 0 || b == nil {
		return nil
	}
	v := make([]uint16, n)
	for i := range v {
		v[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	return v
}

// readBytes reads a VarBytes field; an empty one decodes as nil.
func readBytes(r *Reader, field string, max int) []byte {
	b := r.VarBytes(field, max)
	if len(b) == 0 {
		return nil
	}
	return b
}

func readAccount(r *Reader, field string) (a AccountID) {
	r.Fixed(field, a[:])
	return a
}

func readHash(r *Reader, field string) (h Hash) {
	r.Fixed(field, h[:])
	return h
}

// DecodeCall reads a call written by EncodeCall and returns it as a value
// type (Transfer, not *Transfer), or nil with the failure recorded in r.
// Besides the wire format and the length caps (MaxWeights entries per list,
// MaxHostLen, MaxSaltLen, MaxTextLen, MaxFirmwareVersionLen) it makes every
// check of ValidateCall, so whatever it returns encodes back to the same
// bytes. Empty lists and byte strings decode as nil.
func DecodeCall(r *Reader) Call {
	kind := CallKind(r.U8("call.kind"))
	if r.Err() != nil {
		return nil
	}
	var c Call
	switch kind {
	case KindTransfer:
		c = Transfer{To: readAccount(r, "transfer.to"), Amount: r.U64("transfer.amount")}
	case KindRegisterNetwork:
		c = RegisterNetwork{Hotkey: readAccount(r, "register_network.hotkey")}
	case KindSetHyperparam:
		c = SetHyperparam{
			Netuid: Netuid(r.U16("set_hyperparam.netuid")),
			Param:  Hyperparam(r.U8("set_hyperparam.param")),
			Value:  r.U64("set_hyperparam.value"),
		}
	case KindBurnedRegister:
		c = BurnedRegister{
			Netuid:   Netuid(r.U16("burned_register.netuid")),
			Hotkey:   readAccount(r, "burned_register.hotkey"),
			MaxPrice: r.U64("burned_register.max_price"),
		}
	case KindServe:
		c = Serve{
			Netuid: Netuid(r.U16("serve.netuid")),
			Host:   r.String("serve.host", MaxHostLen),
			Port:   r.U16("serve.port"),
			TLSKey: readAccount(r, "serve.tls_key"),
		}
	case KindAddStake:
		c = AddStake{Hotkey: readAccount(r, "add_stake.hotkey"), Amount: r.U64("add_stake.amount")}
	case KindRemoveStake:
		c = RemoveStake{Hotkey: readAccount(r, "remove_stake.hotkey"), Amount: r.U64("remove_stake.amount")}
	case KindSetTake:
		c = SetTake{Hotkey: readAccount(r, "set_take.hotkey"), Take: r.U16("set_take.take")}
	case KindSetWeights:
		c = SetWeights{
			Netuid:     Netuid(r.U16("set_weights.netuid")),
			UIDs:       readU16s(r, "set_weights.uids", MaxWeights),
			Weights:    readU16s(r, "set_weights.weights", MaxWeights),
			VersionKey: r.U64("set_weights.version_key"),
		}
	case KindCommitWeights:
		c = CommitWeights{Netuid: Netuid(r.U16("commit_weights.netuid")), Commit: readHash(r, "commit_weights.commit")}
	case KindRevealWeights:
		c = RevealWeights{
			Netuid:     Netuid(r.U16("reveal_weights.netuid")),
			UIDs:       readU16s(r, "reveal_weights.uids", MaxWeights),
			Weights:    readU16s(r, "reveal_weights.weights", MaxWeights),
			Salt:       readBytes(r, "reveal_weights.salt", MaxSaltLen),
			VersionKey: r.U64("reveal_weights.version_key"),
		}
	case KindSetRootWeights:
		c = SetRootWeights{
			Hotkey:  readAccount(r, "set_root_weights.hotkey"),
			Netuids: readU16s(r, "set_root_weights.netuids", MaxWeights),
			Weights: readU16s(r, "set_root_weights.weights", MaxWeights),
		}
	case KindPropose:
		var p Propose
		p.Action.Kind = ActionKind(r.U8("propose.action.kind"))
		p.Action.Param = GlobalParam(r.U8("propose.action.param"))
		p.Action.Value = r.U64("propose.action.value")
		p.Action.FirmwareHash = readHash(r, "propose.action.firmware_hash")
		p.Action.FirmwareVersion = r.String("propose.action.firmware_version", MaxFirmwareVersionLen)
		p.Description = r.String("propose.description", MaxTextLen)
		c = p
	case KindVote:
		c = Vote{Proposal: r.U64("vote.proposal"), Aye: r.Bool("vote.aye")}
	default:
		r.Fail("call.kind", fmt.Errorf("%w: unknown call kind %d", ErrBadFormat, kind))
		return nil
	}
	if r.Err() != nil {
		return nil
	}
	if field, err := checkCall(c); err != nil {
		r.Fail(field, err)
		return nil
	}
	return c
}

// ValidateCall reports whether c is a call DecodeCall would accept: a value
// of one of the call structs, lists within MaxWeights entries and of equal
// length (UIDs and Weights, Netuids and Weights), Host within MaxHostLen,
// Salt within MaxSaltLen, Description within MaxTextLen, a known Hyperparam,
// and a well-formed ProposalAction: a known kind; for ActionSetParam a known
// GlobalParam and no firmware fields; for ActionApproveFirmware a non-zero
// FirmwareHash, a FirmwareVersion of 1 to MaxFirmwareVersionLen bytes, and
// Param and Value zero. It checks form only; whether the chain accepts the
// call is chain/state's business.
func ValidateCall(c Call) error {
	if field, err := checkCall(c); err != nil {
		return fmt.Errorf("types: %s: %w", field, err)
	}
	return nil
}

// checkCall returns the field that fails validation and why.
func checkCall(c Call) (string, error) {
	switch c := c.(type) {
	case Transfer, RegisterNetwork, BurnedRegister, CommitWeights, AddStake, RemoveStake, SetTake, Vote:
		return "", nil
	case SetHyperparam:
		if !c.Param.Valid() {
			return "set_hyperparam.param", fmt.Errorf("%w: unknown hyperparameter %d", ErrBadFormat, c.Param)
		}
	case Serve:
		if len(c.Host) > MaxHostLen {
			return "serve.host", fmt.Errorf("%w: %d > %d bytes", ErrTooLong, len(c.Host), MaxHostLen)
		}
	case SetWeights:
		return checkWeights("set_weights", "uids", c.UIDs, c.Weights)
	case RevealWeights:
		if len(c.Salt) > MaxSaltLen {
			return "reveal_weights.salt", fmt.Errorf("%w: %d > %d bytes", ErrTooLong, len(c.Salt), MaxSaltLen)
		}
		return checkWeights("reveal_weights", "uids", c.UIDs, c.Weights)
	case SetRootWeights:
		return checkWeights("set_root_weights", "netuids", c.Netuids, c.Weights)
	case Propose:
		if len(c.Description) > MaxTextLen {
			return "propose.description", fmt.Errorf("%w: %d > %d bytes", ErrTooLong, len(c.Description), MaxTextLen)
		}
		return checkAction(&c.Action)
	case nil:
		return "call", fmt.Errorf("%w: no call", ErrBadFormat)
	default:
		return "call", fmt.Errorf("%w: unsupported call type %T (calls are value types such as types.Transfer)", ErrBadFormat, c)
	}
	return "", nil
}

func checkWeights(call, keys string, k, w []uint16) (string, error) {
	if len(k) > MaxWeights {
		return call + "." + keys, fmt.Errorf("%w: %d > %d entries", ErrTooLong, len(k), MaxWeights)
	}
	if len(w) > MaxWeights {
		return call + ".weights", fmt.Errorf("%w: %d > %d entries", ErrTooLong, len(w), MaxWeights)
	}
	if len(k) != len(w) {
		return call + ".weights", fmt.Errorf("%w: %d %s but %d weights", ErrBadFormat, len(k), keys, len(w))
	}
	return "", nil
}

func checkAction(a *ProposalAction) (string, error) {
	switch a.Kind {
	case ActionSetParam:
		if !a.Param.Valid() {
			return "propose.action.param", fmt.Errorf("%w: unknown global parameter %d", ErrBadFormat, a.Param)
		}
		if !a.FirmwareHash.IsZero() || a.FirmwareVersion != "" {
			return "propose.action", fmt.Errorf("%w: firmware fields set on a set-param action", ErrNonCanon)
		}
	case ActionApproveFirmware:
		if a.Param != 0 || a.Value != 0 {
			return "propose.action", fmt.Errorf("%w: param or value set on a firmware action", ErrNonCanon)
		}
		if a.FirmwareHash.IsZero() {
			return "propose.action.firmware_hash", fmt.Errorf("%w: zero firmware hash", ErrBadFormat)
		}
		if len(a.FirmwareVersion) == 0 || len(a.FirmwareVersion) > MaxFirmwareVersionLen {
			return "propose.action.firmware_version", fmt.Errorf("%w: %d bytes, want 1 to %d", ErrBadFormat, len(a.FirmwareVersion), MaxFirmwareVersionLen)
		}
	default:
		return "propose.action.kind", fmt.Errorf("%w: unknown action kind %d", ErrBadFormat, a.Kind)
	}
	return "", nil
}

// Encode returns the canonical encoding of tx, signature included. It
// panics if tx.Call is not a call value (see EncodeCall).
func (tx *Tx) Encode() []byte {
	w := NewWriter(make([]byte, 0, 128))
	encodeTx(w, tx)
	return w.Bytes()
}

func encodeTx(w *Writer, tx *Tx) {
	w.Fixed(tx.Signer[:])
	w.U64(tx.Nonce)
	w.U64(tx.ValidUntil)
	EncodeCall(w, tx.Call)
	w.Fixed(tx.Sig[:])
}

func decodeTx(r *Reader, tx *Tx) {
	tx.Signer = readAccount(r, "tx.signer")
	tx.Nonce = r.U64("tx.nonce")
	tx.ValidUntil = r.U64("tx.valid_until")
	tx.Call = DecodeCall(r)
	r.Fixed("tx.sig", tx.Sig[:])
}

// DecodeTx decodes a transaction from exactly b. It rejects an input over
// MaxTxSize bytes, anything DecodeCall rejects, and trailing bytes, so
// Encode of the result is b. It does not check the signature (Verify).
func DecodeTx(b []byte) (*Tx, error) {
	if len(b) > MaxTxSize {
		return nil, fmt.Errorf("types: decode tx: %w: %d bytes > %d", ErrTooLong, len(b), MaxTxSize)
	}
	r := NewReader(b)
	tx := new(Tx)
	decodeTx(r, tx)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("types: decode tx: %w", err)
	}
	return tx, nil
}

// Validate reports whether tx would survive Encode then DecodeTx: its call
// passes ValidateCall and its encoding fits MaxTxSize. Signature, nonce and
// validity window are not checked here.
func (tx *Tx) Validate() error {
	if err := ValidateCall(tx.Call); err != nil {
		return err
	}
	if n := len(tx.Encode()); n > MaxTxSize {
		return fmt.Errorf("types: tx: %w: encodes to %d bytes > %d", ErrTooLong, n, MaxTxSize)
	}
	return nil
}

// Hash returns the transaction's id: HashBytes of its full encoding,
// signature included.
func (tx *Tx) Hash() Hash { return HashBytes(tx.Encode()) }

// SigningBytes returns what the signer signs: "taobox/tx/v1" ‖ chainID ‖
// Signer ‖ Nonce ‖ ValidUntil ‖ the encoded call. chainID is the genesis
// hash, so a transaction signed for one chain is void on every other.
func (tx *Tx) SigningBytes(chainID Hash) []byte {
	w := NewWriter(make([]byte, 0, 128))
	w.Fixed([]byte(txDomain))
	w.Fixed(chainID[:])
	w.Fixed(tx.Signer[:])
	w.U64(tx.Nonce)
	w.U64(tx.ValidUntil)
	EncodeCall(w, tx.Call)
	return w.Bytes()
}

// Sign sets tx.Signer to priv's account and tx.Sig to priv's signature of
// SigningBytes(chainID). It panics if priv is not an ed25519 private key of
// the right length or tx.Call is not a call value.
func (tx *Tx) Sign(priv ed25519.PrivateKey, chainID Hash) {
	tx.Signer = AccountIDFromPrivateKey(priv)
	copy(tx.Sig[:], ed25519.Sign(priv, tx.SigningBytes(chainID)))
}

// Verify checks that tx.Sig is tx.Signer's signature of
// SigningBytes(chainID). The error wraps ErrBadSignature when it is not.
func (tx *Tx) Verify(chainID Hash) error {
	if err := ValidateCall(tx.Call); err != nil {
		return err
	}
	if !ed25519.Verify(tx.Signer.PublicKey(), tx.SigningBytes(chainID), tx.Sig[:]) {
		return fmt.Errorf("%w: transaction %s (signer %s, nonce %d) is not signed by its signer for chain %s",
			ErrBadSignature, tx.Hash(), tx.Signer, tx.Nonce, chainID)
	}
	return nil
}

// CommitHash is the hash a commit_weights call commits to and a later
// reveal_weights call must match: HashBytes("taobox/commit/v1" ‖ hotkey ‖
// netuid u16 ‖ uids ‖ weights ‖ salt ‖ versionKey u64), where uids, weights
// and salt each carry a u32 length, so no two inputs share an encoding.
func CommitHash(hotkey AccountID, netuid Netuid, uids, weights []uint16, salt []byte, versionKey uint64) Hash {
	w := NewWriter(make([]byte, 0, len(commitDomain)+32+2+12+2*len(uids)+2*len(weights)+len(salt)+8))
	w.Fixed([]byte(commitDomain))
	w.Fixed(hotkey[:])
	w.U16(uint16(netuid))
	writeU16s(w, uids)
	writeU16s(w, weights)
	w.VarBytes(salt)
	w.U64(versionKey)
	return HashBytes(w.Bytes())
}
