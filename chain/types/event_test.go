package types

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// sampleEvents holds one event of every kind.
func sampleEvents() []Event {
	var evs []Event
	for k := EvTxApplied; k < evKindEnd; k++ {
		e := Event{Kind: k, TxIndex: int32(k) - 2, Netuid: Netuid(k), Account: acct(byte(k)), UID: uint16(k) * 3, Amount: uint64(k) << 33, Value: uint64(k)}
		if k == EvTxFailed {
			e.Error = "insufficient balance: have 1 rao, need 2"
			e.Other = acct(200)
		}
		evs = append(evs, e)
	}
	return evs
}

func TestEventKindNames(t *testing.T) {
	seen := map[string]bool{}
	for k := EvTxApplied; k < evKindEnd; k++ {
		s := k.String()
		if s == "" || strings.HasPrefix(s, "EventKind(") || seen[s] {
			t.Errorf("kind %d: name %q missing or repeated", k, s)
		}
		seen[s] = true
	}
	if EvFirmwareApproved != 25 || EvEquivocation != 26 || EvTxApplied != 1 {
		t.Error("event numbering moved")
	}
	if EventKind(0).String() != "EventKind(0)" || evKindEnd.String() != "EventKind(27)" {
		t.Error("unknown kinds are not shown by number")
	}
}

func TestEventsRoundTrip(t *testing.T) {
	for _, evs := range [][]Event{nil, sampleEvents()} {
		enc := EncodeEvents(evs)
		got, err := DecodeEvents(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, evs) {
			t.Errorf("round trip: %+v, want %+v", got, evs)
		}
		if !bytes.Equal(EncodeEvents(got), enc) {
			t.Error("re-encoding differs")
		}
	}
	w := NewWriter(nil)
	EncodeEvent(w, &Event{Kind: EvEpoch, TxIndex: -1})
	if len(w.Bytes()) != minEventSize {
		t.Errorf("an event without error is %d bytes, minEventSize %d", len(w.Bytes()), minEventSize)
	}
}

func TestEventErrorCut(t *testing.T) {
	for _, s := range []string{
		strings.Repeat("x", 300),
		strings.Repeat("x", 255) + "é" + "tail", // 'é' straddles byte 256
		strings.Repeat("€", 100),                // 3-byte runes
	} {
		evs := []Event{{Kind: EvTxFailed, Error: s}}
		got, err := DecodeEvents(EncodeEvents(evs))
		if err != nil {
			t.Fatal(err)
		}
		e := got[0].Error
		if len(e) > MaxEventErrorLen || !strings.HasPrefix(s, e) || !utf8.ValidString(e) || len(e) < MaxEventErrorLen-3 {
			t.Errorf("cut %d bytes to %d: %q", len(s), len(e), e)
		}
		if EventsRoot(evs) != EventsRoot(got) {
			t.Error("the events root differs between the long and the cut error")
		}
	}
}

func TestEventsRoot(t *testing.T) {
	evs := sampleEvents()
	leaves := make([]Hash, len(evs))
	for i := range evs {
		w := NewWriter(nil)
		EncodeEvent(w, &evs[i])
		leaves[i] = HashBytes(w.Bytes())
	}
	if EventsRoot(evs) != MerkleRoot(leaves) {
		t.Error("EventsRoot is not MerkleRoot of the event hashes")
	}
	if !EventsRoot(nil).IsZero() {
		t.Error("EventsRoot of no events is not zero")
	}
	evs[4].Value++
	if EventsRoot(evs) == MerkleRoot(leaves) {
		t.Error("EventsRoot ignores a field")
	}
}

func TestDecodeEventsRejects(t *testing.T) {
	one := EncodeEvents([]Event{{Kind: EvTransfer, TxIndex: 0}})
	mut := func(at int, v byte) []byte {
		b := append([]byte{}, one...)
		b[at] = v
		return b
	}
	withIndex := func(i int32) []byte {
		b := append([]byte{}, one...)
		binary.BigEndian.PutUint32(b[5:], uint32(i))
		return b
	}
	withErr := EncodeEvents([]Event{{Kind: EvTxFailed, Error: "abc"}})
	longErr := append([]byte{}, one...)
	binary.BigEndian.PutUint32(longErr[len(longErr)-4:], MaxEventErrorLen+1)
	longErr = append(longErr, make([]byte, MaxEventErrorLen+1)...)
	for _, tc := range []struct {
		name, want string
		in         []byte
		is         error
	}{
		{"empty", "events", nil, ErrShort},
		{"kind 0", "unknown event kind 0", mut(4, 0), ErrBadFormat},
		{"kind end", "unknown event kind 27", mut(4, byte(evKindEnd)), ErrBadFormat},
		{"tx index -2", "events[0]: event.tx_index", withIndex(-2), ErrBadFormat},
		{"error over cap", "event.error", longErr, ErrTooLong},
		{"trailing", "trailing", append(append([]byte{}, one...), 0), ErrTrailing},
		{"count past input", "cannot fit", mut(3, 2), ErrShort},
		{"count over cap", "events", []byte{0xff, 0xff, 0xff, 0xff}, ErrTooLong},
		{"truncated", "events[0]: event.error", withErr[:len(withErr)-1], ErrShort},
	} {
		_, err := DecodeEvents(tc.in)
		if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: DecodeEvents = %v, want %v mentioning %q", tc.name, err, tc.is, tc.want)
		}
	}
	if _, err := DecodeEvents(withIndex(-1)); err != nil {
		t.Errorf("TxIndex -1 rejected: %v", err)
	}
}

func TestEncodeEventPanics(t *testing.T) {
	for _, e := range []Event{{}, {Kind: evKindEnd}, {Kind: EvEpoch, TxIndex: -2}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("EncodeEvent(%+v) did not panic", e)
				}
			}()
			EncodeEvent(NewWriter(nil), &e)
		}()
	}
}
