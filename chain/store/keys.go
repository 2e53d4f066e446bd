package store

import (
	"encoding/binary"

	"taobox/chain/types"
)

// Key prefixes (see the package doc for the layout).
const (
	pMeta    = 'M'
	pHeader  = 'H'
	pHashIdx = 'h'
	pBody    = 'B'
	pEvents  = 'V'
	pCert    = 'C'
	pEpoch   = 'E'
	pState   = 'S'
	pBucket  = 'R'
)

// formatVersion is the on-disk format this build writes and reads.
const formatVersion = 1

var (
	keyFormat = []byte("Mformat")
	keyHead   = []byte("Mhead")
	keyBase   = []byte("Mbase")
	// keyHardState holds the consensus hard state (PutHardState).
	keyHardState = []byte("Mhardstate")
)

func heightKey(prefix byte, h uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefix
	binary.BigEndian.PutUint64(k[1:], h)
	return k
}

func hashKey(hash types.Hash) []byte {
	k := make([]byte, 1+len(hash))
	k[0] = pHashIdx
	copy(k[1:], hash[:])
	return k
}

// stateKey is S ‖ u32 bucket ‖ key.
func stateKey(bucket uint32, key []byte) []byte {
	k := make([]byte, 5+len(key))
	k[0] = pState
	binary.BigEndian.PutUint32(k[1:], bucket)
	copy(k[5:], key)
	return k
}

// bucketPrefix is S ‖ u32 bucket: the prefix of every state key of bucket.
func bucketPrefix(bucket uint32) []byte {
	k := make([]byte, 5)
	k[0] = pState
	binary.BigEndian.PutUint32(k[1:], bucket)
	return k
}

// bucketKey is R ‖ u32 bucket: the cached hash of bucket.
func bucketKey(bucket uint32) []byte {
	k := make([]byte, 5)
	k[0] = pBucket
	binary.BigEndian.PutUint32(k[1:], bucket)
	return k
}

// headRecord is the value under M head.
type headRecord struct {
	height uint64
	hash   types.Hash
	root   types.Hash
}

func (h headRecord) encode() []byte {
	b := make([]byte, 8+32+32)
	binary.BigEndian.PutUint64(b, h.height)
	copy(b[8:], h.hash[:])
	copy(b[40:], h.root[:])
	return b
}

func decodeHead(b []byte) (headRecord, bool) {
	var h headRecord
	if len(b) != 72 {
		return h, false
	}
	h.height = binary.BigEndian.Uint64(b)
	copy(h.hash[:], b[8:40])
	copy(h.root[:], b[40:])
	return h, true
}

func encodeU64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func encodeFormat(buckets int) []byte {
	b := binary.BigEndian.AppendUint32(nil, formatVersion)
	return binary.BigEndian.AppendUint32(b, uint32(buckets))
}
