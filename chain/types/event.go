package types

import (
	"fmt"
	"unicode/utf8"
)

// Event encoding (all integers big-endian):
//
//	Event  = Kind u8 ‖ TxIndex i32 (two's complement) ‖ Netuid u16 ‖
//	         Account[32] ‖ Other[32] ‖ UID u16 ‖ Amount u64 ‖ Value u64 ‖
//	         Error (u32 length ‖ bytes)                 (93 bytes + Error)
//	Events = u32 count ‖ each Event, back to back

// EventKind says what happened. The numbers are part of the encoding and
// never change meaning.
type EventKind uint8

const (
	EvTxApplied EventKind = 1 + iota
	EvTxFailed
	EvTransfer
	EvFeeBurned
	EvNetworkRegistered
	EvHyperparamSet
	EvNeuronRegistered
	EvNeuronReplaced
	EvAxonServed
	EvStakeAdded
	EvStakeRemoved
	EvTakeSet
	EvWeightsSet
	EvWeightsCommitted
	EvWeightsRevealed
	EvRootWeightsSet
	EvEpoch
	EvEmission
	EvBlockReward
	EvProposed
	EvVoted
	EvProposalPassed
	EvProposalRejected
	EvParamChanged
	EvFirmwareApproved
	// EvEquivocation: a block committed evidence that Account signed two
	// conflicting consensus messages at height Value, round Amount; UID is
	// the message type (1 prevote, 2 precommit, 0x20 proposal). The
	// offender is left out of the authority sets of the next jail epochs.
	EvEquivocation
	evKindEnd
)

// Event is one thing a block did, emitted by the state machine in order.
// Which fields a kind uses is the state machine's convention; unused ones
// are zero.
type Event struct {
	Kind    EventKind
	TxIndex int32 // the transaction's index in the block; -1: block-level
	Netuid  Netuid
	Account AccountID
	Other   AccountID
	UID     uint16
	Amount  uint64
	Value   uint64
	Error   string // EvTxFailed: the reason, at most MaxEventErrorLen bytes
}

// Caps on event encodings.
const (
	// MaxEventErrorLen caps Event.Error; the encoder cuts a longer reason
	// (at a UTF-8 boundary), so a long error never makes a block fail.
	MaxEventErrorLen = 256
	// MaxEvents caps the events of one block. A full block of MaxBlockTxs
	// transactions emits a handful each, and an epoch block a few per
	// neuron of every subnet due (1024 subnets × 256 uids is 2^18 neurons),
	// so 2^20 leaves room while bounding what a decoder accepts.
	MaxEvents = 1 << 20
	// MaxEventsSize caps an EncodeEvents encoding: MaxEvents events of the
	// largest size, so anything EncodeEvents writes decodes.
	MaxEventsSize = 4 + MaxEvents*maxEventSize
)

const (
	minEventSize = 1 + 4 + 2 + 32 + 32 + 2 + 8 + 8 + 4
	maxEventSize = minEventSize + MaxEventErrorLen
)

// Valid reports whether k is a known event kind.
func (k EventKind) Valid() bool { return k >= EvTxApplied && k < evKindEnd }

var eventKindNames = [...]string{
	EvTxApplied:         "TxApplied",
	EvTxFailed:          "TxFailed",
	EvTransfer:          "Transfer",
	EvFeeBurned:         "FeeBurned",
	EvNetworkRegistered: "NetworkRegistered",
	EvHyperparamSet:     "HyperparamSet",
	EvNeuronRegistered:  "NeuronRegistered",
	EvNeuronReplaced:    "NeuronReplaced",
	EvAxonServed:        "AxonServed",
	EvStakeAdded:        "StakeAdded",
	EvStakeRemoved:      "StakeRemoved",
	EvTakeSet:           "TakeSet",
	EvWeightsSet:        "WeightsSet",
	EvWeightsCommitted:  "WeightsCommitted",
	EvWeightsRevealed:   "WeightsRevealed",
	EvRootWeightsSet:    "RootWeightsSet",
	EvEpoch:             "Epoch",
	EvEmission:          "Emission",
	EvBlockReward:       "BlockReward",
	EvProposed:          "Proposed",
	EvVoted:             "Voted",
	EvProposalPassed:    "ProposalPassed",
	EvProposalRejected:  "ProposalRejected",
	EvParamChanged:      "ParamChanged",
	EvFirmwareApproved:  "FirmwareApproved",
	EvEquivocation:      "Equivocation",
	evKindEnd:           "",
}

// String returns the kind's name in Substrate's event style ("TxApplied",
// "StakeAdded", …), or "EventKind(N)" for an unknown kind.
func (k EventKind) String() string {
	if k.Valid() {
		return eventKindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// eventError returns s cut to at most MaxEventErrorLen bytes, at a rune
// start when s is valid UTF-8 there.
func eventError(s string) string {
	if len(s) <= MaxEventErrorLen {
		return s
	}
	n := MaxEventErrorLen
	for i := 0; i < utf8.UTFMax && n > 0 && !utf8.RuneStart(s[n]); i++ {
		n--
	}
	return s[:n]
}

// EncodeEvent writes e. The Error is cut to MaxEventErrorLen bytes (the
// decoder returns the cut form). It panics on an unknown Kind or a TxIndex
// below -1: the state machine emits events, so either is a programmer error
// that must not reach a block.
func EncodeEvent(w *Writer, e *Event) {
	if !e.Kind.Valid() {
		panic(fmt.Sprintf("types: EncodeEvent: unknown event kind %d", uint8(e.Kind)))
	}
	if e.TxIndex < -1 {
		panic(fmt.Sprintf("types: EncodeEvent: TxIndex %d (want -1 or a transaction index)", e.TxIndex))
	}
	w.U8(uint8(e.Kind))
	w.U32(uint32(e.TxIndex))
	w.U16(uint16(e.Netuid))
	w.Fixed(e.Account[:])
	w.Fixed(e.Other[:])
	w.U16(e.UID)
	w.U64(e.Amount)
	w.U64(e.Value)
	w.String(eventError(e.Error))
}

// DecodeEvent reads an event written by EncodeEvent into e, recording a
// failure in r. It rejects an unknown Kind, a TxIndex below -1 and an Error
// over MaxEventErrorLen bytes.
func DecodeEvent(r *Reader, e *Event) {
	e.Kind = EventKind(r.U8("event.kind"))
	if r.Err() == nil && !e.Kind.Valid() {
		r.Fail("event.kind", fmt.Errorf("%w: unknown event kind %d", ErrBadFormat, uint8(e.Kind)))
	}
	e.TxIndex = int32(r.U32("event.tx_index"))
	if r.Err() == nil && e.TxIndex < -1 {
		r.Fail("event.tx_index", fmt.Errorf("%w: %d (want -1 or a transaction index)", ErrBadFormat, e.TxIndex))
	}
	e.Netuid = Netuid(r.U16("event.netuid"))
	r.Fixed("event.account", e.Account[:])
	r.Fixed("event.other", e.Other[:])
	e.UID = r.U16("event.uid")
	e.Amount = r.U64("event.amount")
	e.Value = r.U64("event.value")
	e.Error = r.String("event.error", MaxEventErrorLen)
}

// Hash returns HashBytes of e's encoding (EncodeEvent): a leaf of
// EventsRoot. It panics as EncodeEvent does.
func (e *Event) Hash() Hash {
	w := NewWriter(make([]byte, 0, minEventSize+len(e.Error)))
	EncodeEvent(w, e)
	return HashBytes(w.Bytes())
}

// EncodeEvents returns the encoding of evs: a u32 count, then each event
// (EncodeEvent, which cuts long errors). It panics, as EncodeEvent does, on
// an invalid event, and on more than MaxEvents events.
func EncodeEvents(evs []Event) []byte {
	if len(evs) > MaxEvents {
		panic(fmt.Sprintf("types: EncodeEvents: %d events > %d", len(evs), MaxEvents))
	}
	w := NewWriter(make([]byte, 0, 4+len(evs)*minEventSize))
	w.Len(len(evs))
	for i := range evs {
		EncodeEvent(w, &evs[i])
	}
	return w.Bytes()
}

// DecodeEvents decodes events from exactly b. It rejects an input over
// MaxEventsSize bytes, more than MaxEvents events, anything DecodeEvent
// rejects, and trailing bytes, so EncodeEvents of the result is b. No
// events decode as nil.
func DecodeEvents(b []byte) ([]Event, error) {
	if len(b) > MaxEventsSize {
		return nil, fmt.Errorf("types: decode events: %w: %d bytes > %d", ErrTooLong, len(b), MaxEventsSize)
	}
	r := NewReader(b)
	n := r.Len("events", MaxEvents)
	if n > r.Remaining()/minEventSize {
		r.Fail("events", fmt.Errorf("%w: %d events cannot fit in %d bytes", ErrShort, n, r.Remaining()))
	}
	var evs []Event
	if n > 0 && r.Err() == nil {
		evs = make([]Event, n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		DecodeEvent(r, &evs[i])
		if r.err != nil {
			r.err = fmt.Errorf("events[%d]: %w", i, r.err)
		}
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("types: decode events: %w", err)
	}
	return evs, nil
}

// EventsRoot returns MerkleRoot of the events' hashes (Event.Hash), in
// order; the zero Hash for no events. It panics, as EncodeEvent does, on an
// invalid event.
func EventsRoot(evs []Event) Hash {
	if len(evs) == 0 {
		return Hash{}
	}
	leaves := make([]Hash, len(evs))
	for i := range evs {
		leaves[i] = evs[i].Hash()
	}
	return MerkleRoot(leaves)
}
