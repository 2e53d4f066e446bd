package types

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

var testChain = HashBytes([]byte("taobox test chain"))

// testKey returns a deterministic key pair for seed byte b.
func testKey(b byte) (AccountID, ed25519.PrivateKey) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, 32))
	return AccountIDFromPrivateKey(priv), priv
}

func acct(b byte) (a AccountID) {
	for i := range a {
		a[i] = b + byte(i)
	}
	return a
}

// sampleCalls holds a valid call of every kind (both action kinds of
// Propose), with non-zero fields so field order mistakes show.
func sampleCalls() []Call {
	return []Call{
		Transfer{To: acct(1), Amount: 5 * RaoPerTAO},
		RegisterNetwork{Hotkey: acct(2)},
		SetHyperparam{Netuid: 3, Param: ParamTempo, Value: 360},
		SetHyperparam{Netuid: 3, Param: ParamBurnIncreaseMult, Value: 1260},
		BurnedRegister{Netuid: 1, Hotkey: acct(3), MaxPrice: 1 << 40},
		Serve{Netuid: 1, Host: "miner.example.org", Port: 8091, TLSKey: acct(4)},
		AddStake{Hotkey: acct(5), Amount: 1000},
		RemoveStake{Hotkey: acct(6), Amount: 999},
		SetTake{Hotkey: acct(7), Take: 11796},
		SetWeights{Netuid: 2, UIDs: []uint16{0, 1, 255}, Weights: []uint16{65535, 7, 0}, VersionKey: 42},
		SetWeights{Netuid: 2, VersionKey: 1},
		CommitWeights{Netuid: 2, Commit: HashBytes([]byte("commit"))},
		RevealWeights{Netuid: 2, UIDs: []uint16{4, 5}, Weights: []uint16{1, 2}, Salt: []byte("pepper"), VersionKey: 9},
		SetRootWeights{Hotkey: acct(8), Netuids: []uint16{1, 2}, Weights: []uint16{30000, 35535}},
		Propose{Action: ProposalAction{Kind: ActionSetParam, Param: GlobalTransferFee, Value: 125_000}, Description: "cheaper transfers"},
		Propose{Action: ProposalAction{Kind: ActionApproveFirmware, FirmwareHash: HashBytes([]byte("fw")), FirmwareVersion: "1.2.3"}, Description: "release 1.2.3"},
		Vote{Proposal: 7, Aye: true},
		Vote{Proposal: 8},
	}
}

// sampleTxs returns sampleCalls as transactions signed for testChain.
func sampleTxs() []Tx {
	_, priv := testKey(1)
	var txs []Tx
	for i, c := range sampleCalls() {
		tx := Tx{Nonce: uint64(i), ValidUntil: 100 + uint64(i), Call: c}
		tx.Sign(priv, testChain)
		txs = append(txs, tx)
	}
	return txs
}

func TestCallKindsCovered(t *testing.T) {
	seen := map[CallKind]bool{}
	for _, c := range sampleCalls() {
		seen[c.Kind()] = true
	}
	for k := KindTransfer; k <= KindVote; k++ {
		if !seen[k] {
			t.Errorf("sampleCalls has no %s", k)
		}
		if strings.HasPrefix(k.String(), "CallKind(") {
			t.Errorf("kind %d has no name", k)
		}
	}
	if CallKind(0).String() != "CallKind(0)" || (KindVote+1).String() != "CallKind(15)" {
		t.Error("unknown kinds are not shown by number")
	}
}

func TestTxRoundTrip(t *testing.T) {
	for _, tx := range sampleTxs() {
		enc := tx.Encode()
		got, err := DecodeTx(enc)
		if err != nil {
			t.Fatalf("%s: %v", tx.Call.Kind(), err)
		}
		if !reflect.DeepEqual(*got, tx) {
			t.Errorf("%s: decoded %+v, want %+v", tx.Call.Kind(), *got, tx)
		}
		if !bytes.Equal(got.Encode(), enc) {
			t.Errorf("%s: re-encoding differs", tx.Call.Kind())
		}
		if got.Hash() != tx.Hash() || tx.Hash() != HashBytes(enc) {
			t.Errorf("%s: hash is not HashBytes of the encoding", tx.Call.Kind())
		}
		if err := got.Verify(testChain); err != nil {
			t.Errorf("%s: %v", tx.Call.Kind(), err)
		}
		if err := tx.Validate(); err != nil {
			t.Errorf("%s: Validate: %v", tx.Call.Kind(), err)
		}
		if len(enc) < minTxSize {
			t.Errorf("%s: %d bytes < minTxSize %d", tx.Call.Kind(), len(enc), minTxSize)
		}
	}
	if n := len((&Tx{Call: Vote{}}).Encode()); n != minTxSize {
		t.Errorf("a vote encodes to %d bytes, minTxSize is %d", n, minTxSize)
	}
}

// TestTxGolden pins the wire format: a change here breaks every stored
// block and signature. The values were checked independently with Python's
// hashlib.blake2b and the cryptography package's Ed25519.
func TestTxGolden(t *testing.T) {
	_, priv := testKey(9)
	tx := Tx{Nonce: 1, ValidUntil: 300, Call: Transfer{To: alice(t), Amount: RaoPerTAO}}
	tx.Sign(priv, testChain)
	const want = "" +
		"fd1724385aa0c75b64fb78cd602fa1d991fdebf76b13c58ed702eac835e9f618" + // signer
		"0000000000000001" + "000000000000012c" + // nonce, valid_until
		"01" + alicePub + "000000003b9aca00" + // transfer to alice, 1 TAO
		"78ea7e9aa10679dfc37771de3ce85e82032dfb8f6344f02caa01d36a33d202ae" + // signature
		"6181b09e532e5cd2523a51a794a00af9dc204075e9c3745ce7c9f21714af5a06"
	if got := hex.EncodeToString(tx.Encode()); got != want {
		t.Errorf("encoding\n got %s\nwant %s", got, want)
	}
	if got := tx.Hash().String(); got != "3c788ef72f3fd750f05f1fab6e832d2c619232f4a818ff540ee259d7f9d7cfb5" {
		t.Errorf("hash %s", got)
	}
	sb := tx.SigningBytes(testChain)
	if !bytes.HasPrefix(sb, []byte("taobox/tx/v1")) || !bytes.Equal(sb[12:44], testChain[:]) ||
		!bytes.Equal(sb[44:], tx.Encode()[:len(tx.Encode())-64]) {
		t.Errorf("signing bytes are not tag ‖ chain ‖ signer ‖ nonce ‖ valid_until ‖ call: %x", sb)
	}
}

func TestSignVerify(t *testing.T) {
	_, priv := testKey(3)
	base := Tx{Nonce: 5, ValidUntil: 77, Call: SetWeights{Netuid: 1, UIDs: []uint16{1, 2}, Weights: []uint16{3, 4}, VersionKey: 1}}
	base.Sign(priv, testChain)
	if base.Signer != AccountIDFromPrivateKey(priv) {
		t.Fatal("Sign did not set Signer")
	}
	if err := base.Verify(testChain); err != nil {
		t.Fatal(err)
	}
	other, _ := testKey(4)
	for _, tc := range []struct {
		name   string
		chain  Hash
		mutate func(*Tx)
	}{
		{"other chain", HashBytes([]byte("other")), func(*Tx) {}},
		{"nonce", testChain, func(tx *Tx) { tx.Nonce++ }},
		{"valid_until", testChain, func(tx *Tx) { tx.ValidUntil++ }},
		{"signer", testChain, func(tx *Tx) { tx.Signer = other }},
		{"call field", testChain, func(tx *Tx) {
			c := tx.Call.(SetWeights)
			c.Weights = []uint16{3, 5}
			tx.Call = c
		}},
		{"call version", testChain, func(tx *Tx) {
			c := tx.Call.(SetWeights)
			c.VersionKey = 2
			tx.Call = c
		}},
		{"call kind", testChain, func(tx *Tx) { tx.Call = Vote{Proposal: 1} }},
		{"sig bit 0", testChain, func(tx *Tx) { tx.Sig[0] ^= 1 }},
		{"sig bit 511", testChain, func(tx *Tx) { tx.Sig[63] ^= 0x80 }},
		{"sig zero", testChain, func(tx *Tx) { tx.Sig = Signature{} }},
	} {
		tx := base
		tc.mutate(&tx)
		err := tx.Verify(tc.chain)
		if !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: Verify = %v, want ErrBadSignature", tc.name, err)
		}
	}
	if err := (&Tx{}).Verify(testChain); err == nil || errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify of a tx with no call = %v, want a validation error", err)
	}
}

// encodeRaw encodes a transaction around a call without validating it.
func encodeRaw(c Call) []byte {
	w := NewWriter(nil)
	w.Fixed(make([]byte, 32+16))
	EncodeCall(w, c)
	w.Fixed(make([]byte, 64))
	return w.Bytes()
}

func TestDecodeTxRejects(t *testing.T) {
	valid := sampleTxs()[0].Encode()
	callAt := 32 + 16
	withCall := func(call []byte) []byte {
		b := append([]byte{}, valid[:callAt]...)
		b = append(b, call...)
		return append(b, make([]byte, 64)...)
	}
	big := make([]uint16, MaxWeights+1)
	for _, tc := range []struct {
		name string
		in   []byte
		want string // in the error text
		is   error
	}{
		{"empty", nil, "tx.signer", ErrShort},
		{"short sig", valid[:len(valid)-1], "tx.sig", ErrShort},
		{"trailing", append(append([]byte{}, valid...), 0), "trailing", ErrTrailing},
		{"oversize", make([]byte, MaxTxSize+1), "bytes >", ErrTooLong},
		{"kind 0", withCall([]byte{0}), "unknown call kind 0", ErrBadFormat},
		{"kind 15", withCall([]byte{15}), "unknown call kind 15", ErrBadFormat},
		{"vote bool 2", withCall([]byte{byte(KindVote), 0, 0, 0, 0, 0, 0, 0, 1, 2}), "vote.aye", ErrNonCanon},
		{"hyperparam 0", encodeRaw(SetHyperparam{Netuid: 1, Param: 0}), "unknown hyperparameter 0", ErrBadFormat},
		{"hyperparam end", encodeRaw(SetHyperparam{Netuid: 1, Param: paramEnd}), "unknown hyperparameter", ErrBadFormat},
		{"host cap", encodeRaw(Serve{Host: strings.Repeat("h", MaxHostLen+1)}), "serve.host", ErrTooLong},
		{"uids cap", encodeRaw(SetWeights{UIDs: big}), "set_weights.uids", ErrTooLong},
		{"uids/weights", encodeRaw(SetWeights{UIDs: []uint16{1, 2}, Weights: []uint16{1}}), "2 uids but 1 weights", ErrBadFormat},
		{"reveal lengths", encodeRaw(RevealWeights{UIDs: []uint16{1}}), "reveal_weights.weights", ErrBadFormat},
		{"salt cap", encodeRaw(RevealWeights{Salt: make([]byte, MaxSaltLen+1)}), "reveal_weights.salt", ErrTooLong},
		{"root lengths", encodeRaw(SetRootWeights{Netuids: []uint16{1}}), "1 netuids but 0 weights", ErrBadFormat},
		{"description cap", encodeRaw(Propose{Action: ProposalAction{Kind: ActionSetParam, Param: 1}, Description: strings.Repeat("d", MaxTextLen+1)}), "propose.description", ErrTooLong},
		{"action kind 0", encodeRaw(Propose{}), "unknown action kind 0", ErrBadFormat},
		{"action kind 3", encodeRaw(Propose{Action: ProposalAction{Kind: 3}}), "unknown action kind 3", ErrBadFormat},
		{"global param 0", encodeRaw(Propose{Action: ProposalAction{Kind: ActionSetParam}}), "unknown global parameter 0", ErrBadFormat},
		{"global param end", encodeRaw(Propose{Action: ProposalAction{Kind: ActionSetParam, Param: globalParamEnd}}), "unknown global parameter", ErrBadFormat},
		{"set-param with firmware hash", encodeRaw(Propose{Action: ProposalAction{Kind: ActionSetParam, Param: 1, FirmwareHash: Hash{1}}}), "firmware fields", ErrNonCanon},
		{"set-param with firmware version", encodeRaw(Propose{Action: ProposalAction{Kind: ActionSetParam, Param: 1, FirmwareVersion: "1"}}), "firmware fields", ErrNonCanon},
		{"firmware with param", encodeRaw(Propose{Action: ProposalAction{Kind: ActionApproveFirmware, Param: 1, FirmwareHash: Hash{1}, FirmwareVersion: "1"}}), "param or value", ErrNonCanon},
		{"firmware with value", encodeRaw(Propose{Action: ProposalAction{Kind: ActionApproveFirmware, Value: 1, FirmwareHash: Hash{1}, FirmwareVersion: "1"}}), "param or value", ErrNonCanon},
		{"firmware zero hash", encodeRaw(Propose{Action: ProposalAction{Kind: ActionApproveFirmware, FirmwareVersion: "1"}}), "zero firmware hash", ErrBadFormat},
		{"firmware no version", encodeRaw(Propose{Action: ProposalAction{Kind: ActionApproveFirmware, FirmwareHash: Hash{1}}}), "firmware_version", ErrBadFormat},
		{"firmware version cap", encodeRaw(Propose{Action: ProposalAction{Kind: ActionApproveFirmware, FirmwareHash: Hash{1}, FirmwareVersion: strings.Repeat("v", MaxFirmwareVersionLen+1)}}), "firmware_version", ErrTooLong},
		{"huge list count", withCall([]byte{byte(KindSetWeights), 0, 1, 0xff, 0xff, 0xff, 0xff}), "set_weights.uids", ErrTooLong},
		{"list count past end", withCall([]byte{byte(KindSetWeights), 0, 1, 0, 0, 0, 200}), "set_weights.uids", ErrShort},
	} {
		tx, err := DecodeTx(tc.in)
		if err == nil {
			t.Errorf("%s: DecodeTx accepted: %+v", tc.name, tx)
			continue
		}
		if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: DecodeTx = %v; want %v mentioning %q", tc.name, err, tc.is, tc.want)
		}
	}
}

func TestValidateCall(t *testing.T) {
	for _, c := range sampleCalls() {
		if err := ValidateCall(c); err != nil {
			t.Errorf("%T: %v", c, err)
		}
	}
	for _, c := range []Call{nil, &Transfer{}, SetWeights{UIDs: []uint16{1}}, SetHyperparam{}} {
		if err := ValidateCall(c); err == nil {
			t.Errorf("ValidateCall(%#v) accepted", c)
		}
	}
	big := make([]uint16, 4090)
	tx := Tx{Call: SetWeights{UIDs: big, Weights: big}}
	if err := tx.Validate(); !errors.Is(err, ErrTooLong) {
		t.Errorf("Validate of a tx over MaxTxSize = %v, want ErrTooLong", err)
	}
}

func TestEncodeCallPanicsOnPointer(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "*types.Transfer") {
			t.Errorf("recover() = %v, want a panic naming *types.Transfer", r)
		}
	}()
	EncodeCall(NewWriter(nil), &Transfer{})
}

func TestCommitHash(t *testing.T) {
	hk := acct(1)
	base := CommitHash(hk, 1, []uint16{1, 2}, []uint16{3, 4}, []byte("salt"), 7)
	if base != CommitHash(hk, 1, []uint16{1, 2}, []uint16{3, 4}, []byte("salt"), 7) {
		t.Fatal("CommitHash is not deterministic")
	}
	for name, h := range map[string]Hash{
		"hotkey":      CommitHash(acct(2), 1, []uint16{1, 2}, []uint16{3, 4}, []byte("salt"), 7),
		"netuid":      CommitHash(hk, 2, []uint16{1, 2}, []uint16{3, 4}, []byte("salt"), 7),
		"uids":        CommitHash(hk, 1, []uint16{1, 3}, []uint16{3, 4}, []byte("salt"), 7),
		"weights":     CommitHash(hk, 1, []uint16{1, 2}, []uint16{3, 5}, []byte("salt"), 7),
		"salt":        CommitHash(hk, 1, []uint16{1, 2}, []uint16{3, 4}, []byte("salT"), 7),
		"version":     CommitHash(hk, 1, []uint16{1, 2}, []uint16{3, 4}, []byte("salt"), 8),
		"list border": CommitHash(hk, 1, []uint16{1, 2, 3}, []uint16{4}, []byte("salt"), 7),
	} {
		if h == base {
			t.Errorf("changing %s does not change the commit hash", name)
		}
	}
}
