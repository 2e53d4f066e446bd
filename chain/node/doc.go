// Package node runs a chain: it drives the pure state machine
// (chain/state) with a clock, the goleveldb store (chain/store), a mempool
// and a local JSON API. In this issue the chain has a single authority that
// produces every block; BFT consensus and sync plug in here later.
//
// # Blocks
//
// Open commits block 0 on an empty store: the genesis state (state.Genesis
// Changes), a header of height 0 with a zero Parent, TimeMs = Genesis.TimeMs
// and no transactions, signed by the authority. Block 0 is stored as an
// epoch boundary, so its header (and the chain id in it) is kept forever.
// On an existing store Open reads the head header and refuses a genesis
// whose ID differs from the stored chain id.
//
// ProduceBlock builds block head+1 (see its doc). The store gets, in one
// atomic batch: the encoded header, the whole encoded block
// (types.Block.Encode, header included) as the body, the encoded events
// (types.EncodeEvents), the state changes, and the epoch-boundary mark
// when a subnet (not the root network) ran its epoch in the block.
//
// # Mempool
//
// Mempool is a pure data structure (no state, no signatures, no locks):
// per-signer queues ordered by nonce, a global cap and a per-signer cap
// (PerAccountMax), expiry by ValidUntil and deterministic round-robin
// selection. Submit adds the checks that need more: size, decoding,
// signature (against the chain id) and, for the account's next nonce, the
// fee (state.CheckTx). Each refusal is a *RejectError with its own
// RejectCode and a reason for users.
//
// # API
//
// On a loopback address only (it has no authentication). JSON throughout;
// addresses are SS58 strings, hashes hex, amounts rao as numbers; every
// error is {"error": "..."} with a 4xx or 5xx status, a handler panic is a
// 500, request bodies are capped at 64 KiB, and each request is logged at
// debug level.
//
//	GET  /v1/head              {"height","hash","state_root","time_ms","chain_id"}
//	POST /v1/tx                {"tx": "<hex of types.Tx.Encode()>"} → {"hash"};
//	                           400 {"error","code"} when refused
//	GET  /v1/tx/{hash}         {"status":"pending"} | {"status":"included","height",
//	                           "index","ok","error"} | 404 {"status":"unknown","error"}
//	GET  /v1/account/{address} {"address","free","nonce","staked","pending_nonce"}
//	GET  /v1/subnets           [{"netuid","owner","owner_hotkey","n","burn","pending",
//	                           "tempo","last_epoch","epoch_index","lock","registered_at"}]
//	GET  /v1/subnet/{netuid}   the same object plus "hyperparams" {name: value} and
//	                           "share" (of 65535)
//	GET  /v1/metagraph/{netuid} {"netuid","block","neurons":[{"uid","hotkey","coldkey",
//	                           "stake","take","active","validator_permit",
//	                           "validator_trust","consensus","incentive","dividends",
//	                           "emission","stake_weight","last_update","registered_at",
//	                           "axon":{"host","port","tls_key","block"},
//	                           "weights":[[uid,value]…],"bonds":[[uid,value]…]}]}
//	GET  /v1/globals           {"issuance","burned","locked","total_stake","last_lock",
//	                           "network_last_registered","next_proposal","params":{…}}
//	GET  /v1/block/{height}    header fields ("height","hash","chain_id","parent",
//	                           "time_ms","tx_root","state_root","events_root",
//	                           "proposer","proposer_sig") and "txs":[{"hash","signer",
//	                           "nonce","valid_until","kind","call","ok","error"}];
//	                           404 when pruned or not yet produced
//	GET  /v1/events/{height}   [{"kind":"transfer","tx_index","netuid","account",
//	                           "other","uid","amount","value","error"}]
//	GET  /v1/stream            newline-delimited JSON, one {"height","hash","time_ms",
//	                           "state_root","txs","events"} per new block, flushed
//
// "call" is the call struct as encoding/json writes it (Go field names, for
// example {"To":"5…","Amount":1000}). "pending_nonce" is the nonce the
// account's next new transaction should use, counting its pending ones.
// GET /v1/tx knows the transactions of the last KeepBlocks blocks (rebuilt
// in the background after a restart) and, for a while, why a transaction
// was dropped from the mempool.
package node
