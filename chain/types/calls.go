package types

// Hash is a BLAKE2b-256 digest.
type Hash [32]byte

// AccountID is an ed25519 public key: a coldkey or a hotkey. Users see it as
// an SS58 address (prefix 42, the familiar "5…" form).
type AccountID [32]byte

// Signature is an ed25519 signature.
type Signature [64]byte

// Netuid identifies a subnet; 0 is the root network.
type Netuid uint16

// RaoPerTAO: amounts are u64 rao, 1 TAO = 10^9 rao.
const RaoPerTAO = 1_000_000_000

// CallKind tags the call inside a transaction. The numbers are part of the
// encoding and never change meaning.
type CallKind uint8

const (
	KindTransfer        CallKind = 1
	KindRegisterNetwork CallKind = 2
	KindSetHyperparam   CallKind = 3
	KindBurnedRegister  CallKind = 4
	KindServe           CallKind = 5
	KindAddStake        CallKind = 6
	KindRemoveStake     CallKind = 7
	KindSetTake         CallKind = 8
	KindSetWeights      CallKind = 9
	KindCommitWeights   CallKind = 10
	KindRevealWeights   CallKind = 11
	KindSetRootWeights  CallKind = 12
	KindPropose         CallKind = 13
	KindVote            CallKind = 14
)

// Call is the body of a transaction: one of the structs below.
type Call interface{ Kind() CallKind }

// Caps on variable-length call fields (also bound what decoders allocate).
const (
	MaxWeights  = 4096 // entries in a weights or root-weights call
	MaxHostLen  = 253  // a DNS name or an IP literal
	MaxSaltLen  = 64
	MaxTextLen  = 1024 // proposal description
	MaxTxSize   = 16 << 10
	MaxSubnetID = 1023 // highest netuid a network may get
)

// Transfer moves free balance from the signer (coldkey) to To. A flat fee
// is burned on top of Amount.
type Transfer struct {
	To     AccountID `json:"to"`
	Amount uint64    `json:"amount"`
}

// RegisterNetwork creates a subnet owned by the signer (coldkey), with
// Hotkey as its owner hotkey (uid 0). The lock cost is taken and never
// returned.
type RegisterNetwork struct {
	Hotkey AccountID `json:"hotkey"`
}

// SetHyperparam sets one hyperparameter of a subnet the signer owns.
type SetHyperparam struct {
	Netuid Netuid     `json:"netuid"`
	Param  Hyperparam `json:"param"`
	Value  uint64     `json:"value"`
}

// Hyperparam names an owner-settable subnet parameter.
type Hyperparam uint8

const (
	ParamTempo Hyperparam = 1 + iota
	ParamKappa
	ParamImmunityPeriod
	ParamMinAllowedWeights
	ParamMaxWeightLimit
	ParamWeightsVersion
	ParamWeightsRateLimit
	ParamActivityCutoff
	ParamMaxAllowedUIDs
	ParamMaxAllowedValidators
	ParamBondsMovingAverage
	ParamBondsPenalty
	ParamYuma3
	ParamLiquidAlpha
	ParamAlphaLow
	ParamAlphaHigh
	ParamAlphaSteepness
	ParamCommitReveal
	ParamRevealPeriod
	ParamMinBurn
	ParamMaxBurn
	ParamServingRateLimit
	ParamBurnHalfLife
	ParamBurnIncreaseMult // ×1000, e.g. 1260 = 1.26
	paramEnd
)

// BurnedRegister registers Hotkey on a subnet for the current burn price,
// paid by the signer (coldkey). MaxPrice > 0 caps the price the signer
// accepts (subtensor's register_limit).
type BurnedRegister struct {
	Netuid   Netuid    `json:"netuid"`
	Hotkey   AccountID `json:"hotkey"`
	MaxPrice uint64    `json:"max_price"`
}

// Serve publishes the signer's (hotkey) QUIC endpoint on a subnet: host,
// port and the ed25519 key its TLS certificate uses.
type Serve struct {
	Netuid Netuid    `json:"netuid"`
	Host   string    `json:"host"`
	Port   uint16    `json:"port"`
	TLSKey AccountID `json:"tls_key"`
}

// AddStake moves Amount of the signer's (coldkey) free balance to stake on
// Hotkey.
type AddStake struct {
	Hotkey AccountID `json:"hotkey"`
	Amount uint64    `json:"amount"`
}

// RemoveStake moves Amount of the signer's stake on Hotkey back to its free
// balance.
type RemoveStake struct {
	Hotkey AccountID `json:"hotkey"`
	Amount uint64    `json:"amount"`
}

// SetTake sets the delegate take of a hotkey the signer (coldkey) owns, in
// u16 parts of 65535 (at most 11796 = 18%).
type SetTake struct {
	Hotkey AccountID `json:"hotkey"`
	Take   uint16    `json:"take"`
}

// SetWeights sets the signer's (hotkey) weights on a subnet.
type SetWeights struct {
	Netuid     Netuid   `json:"netuid"`
	UIDs       []uint16 `json:"uids"`
	Weights    []uint16 `json:"weights"`
	VersionKey uint64   `json:"version_key"`
}

// CommitWeights commits to weights by hash (commit-reveal subnets); the hash
// is CommitHash of the revealed weights.
type CommitWeights struct {
	Netuid Netuid `json:"netuid"`
	Commit Hash   `json:"commit"`
}

// RevealWeights reveals weights committed earlier.
type RevealWeights struct {
	Netuid     Netuid   `json:"netuid"`
	UIDs       []uint16 `json:"uids"`
	Weights    []uint16 `json:"weights"`
	Salt       []byte   `json:"salt"`
	VersionKey uint64   `json:"version_key"`
}

// SetRootWeights sets the root-network weights of a hotkey the signer
// (coldkey) owns: how much each subnet should get of the block reward.
type SetRootWeights struct {
	Hotkey  AccountID `json:"hotkey"`
	Netuids []uint16  `json:"netuids"`
	Weights []uint16  `json:"weights"`
}

// Propose opens a governance proposal (signer: coldkey).
type Propose struct {
	Action      ProposalAction `json:"action"`
	Description string         `json:"description"`
}

// ProposalAction is what a passed proposal does.
type ProposalAction struct {
	Kind ActionKind `json:"kind"`
	// ActionSetParam: the global parameter and its new value.
	Param GlobalParam `json:"param"`
	Value uint64      `json:"value"`
	// ActionApproveFirmware: the release's hash and version.
	FirmwareHash    Hash   `json:"firmware_hash"`
	FirmwareVersion string `json:"firmware_version"`
}

// ActionKind tags a ProposalAction.
type ActionKind uint8

const (
	ActionSetParam        ActionKind = 1
	ActionApproveFirmware ActionKind = 2
)

// GlobalParam names a chain-wide parameter governance can change.
type GlobalParam uint8

const (
	GlobalTransferFee GlobalParam = 1 + iota
	GlobalNetworkMinLock
	GlobalNetworkRateLimit
	GlobalSubnetLimit
	GlobalStakeThreshold
	GlobalMaxDelegateTake
	GlobalVotingPeriod
	GlobalQuorumPermille
	globalParamEnd
)

// Vote votes on a proposal with the signer's (coldkey) stake.
type Vote struct {
	Proposal uint64 `json:"proposal"`
	Aye      bool   `json:"aye"`
}

func (Transfer) Kind() CallKind        { return KindTransfer }
func (RegisterNetwork) Kind() CallKind { return KindRegisterNetwork }
func (SetHyperparam) Kind() CallKind   { return KindSetHyperparam }
func (BurnedRegister) Kind() CallKind  { return KindBurnedRegister }
func (Serve) Kind() CallKind           { return KindServe }
func (AddStake) Kind() CallKind        { return KindAddStake }
func (RemoveStake) Kind() CallKind     { return KindRemoveStake }
func (SetTake) Kind() CallKind         { return KindSetTake }
func (SetWeights) Kind() CallKind      { return KindSetWeights }
func (CommitWeights) Kind() CallKind   { return KindCommitWeights }
func (RevealWeights) Kind() CallKind   { return KindRevealWeights }
func (SetRootWeights) Kind() CallKind  { return KindSetRootWeights }
func (Propose) Kind() CallKind         { return KindPropose }
func (Vote) Kind() CallKind            { return KindVote }

// Tx is a signed transaction. The signature covers SigningBytes: a domain
// tag, the chain id (genesis hash), Signer, Nonce, ValidUntil and the call,
// so a transaction cannot be replayed on another chain, after its window,
// or twice (the nonce must equal the account's next nonce).
type Tx struct {
	Signer     AccountID
	Nonce      uint64
	ValidUntil uint64 // the last height that may include it; at most 256 ahead
	Call       Call
	Sig        Signature
}

// MaxValidityWindow bounds ValidUntil - current height.
const MaxValidityWindow = 256
