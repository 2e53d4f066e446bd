// Package node runs a chain: it drives the pure cores — the state machine
// (chain/state) and Tendermint BFT consensus (chain/consensus) — with a
// clock, the goleveldb store (chain/store), a mempool, a Network to its
// peers and a local JSON API. Every node runs the same code path: a set of
// one validator finalizes alone, so a single-node chain is just the
// smallest network. See docs/consensus.md.
//
// # Blocks and finality
//
// Open commits block 0 on an empty store: the genesis state (state.Genesis
// Changes), an unsigned header of height 0 with a zero Parent, TimeMs =
// Genesis.TimeMs, no transactions and NextValSetHash committing the first
// authority set. Block 0 is an epoch boundary whose epoch data is that set;
// it is identical on every node of the chain. On an existing store Open
// reads the head, refuses a genesis whose ID differs from the stored chain
// id, and restores the authority sets and the persisted hard state.
//
// For each height the proposer of the round builds a block (the mempool's
// executable transactions, state.ApplyBlock, the state root, the set
// hashes, and the parent's certificate as LastCommit), signs the header
// and proposes it; the others execute it (validateLocked: linkage,
// timestamps, proposer, LastCommit against the parent's set, roots) and
// vote. Both cache the executed result by block id, the header hash, so
// the decision commits without executing again. A decision is committed in
// one atomic store batch: the encoded header, the whole encoded block
// (types.Block.Encode) as the body, the events, the state changes, and the
// certificate; the epoch-boundary mark when a subnet ran its epoch or the
// block ends an authority epoch (then with the next set as epoch data, so
// header, certificate and set form the handoff proof). Subscribers are then
// notified and the finalized block is gossiped (MsgBlock); the next
// proposal waits until BlockTime has passed since this commit.
//
// The consensus hard state (height, round, step, locks, what was signed) is
// written with an fsync before any message it signed leaves, so a validator
// that crashes and restarts resumes its round and never signs twice.
//
// # Authority sets
//
// Genesis.Authorities is the first set (weights: their power) and the
// candidate list. At the last block of each authority epoch
// (Genesis.EpochBlocks heights) the next set is state.NextAuthorities of
// the state after that block: candidates weighted by delegated stake plus
// power, top Genesis.AuthorityCap, never empty. A node's key is its hotkey;
// a key outside the set makes the node a follower until it is elected.
// A legacy genesis without authorities makes the node's own key the only
// authority.
//
// # Network
//
// Config.Network (chain/p2p, or an in-memory network in tests) carries
// gossip — transactions, proposals, votes, finalized blocks — and requests
// — ReqHeaders, ReqBlocks, ReqEpochProof (payloads in wire.go). HandleGossip
// verifies before it steps and relays what is new; ServeRequest answers from
// the store. A node that sees messages from later heights, or needs a block
// it lacks, fetches finalized blocks with ReqBlocks, verifies each
// certificate against the set it knows (following set changes at epoch
// ends), executes and commits them, then rejoins consensus. Each validator
// re-sends its current round's messages every VoteTimeout, so rounds whose
// messages were lost still end.
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
//	GET  /v1/head              {"height","hash","state_root","time_ms","chain_id",
//	                           "finalized" (= height: a block is committed only
//	                           final),"syncing" (catching up from peers),"peers"
//	                           (connected peers; absent without Config.Peers)}
//	POST /v1/tx                {"tx": "<hex of types.Tx.Encode()>"} → {"hash"};
//	                           400 {"error","code"} when refused
//	GET  /v1/tx/{hash}         {"status":"pending"} | {"status":"included","height",
//	                           "index","ok","error"} | 404 {"status":"unknown","error"}
//	GET  /v1/account/{address} {"address","free","nonce","staked","pending_nonce"}
//	GET  /v1/subnets           [{"netuid","owner","owner_hotkey","n","burn","pending",
//	                           "tempo","last_epoch","epoch_index","lock","registered_at"}]
//	GET  /v1/subnet/{netuid}   the same object plus "hyperparams" {name: value} and
//	                           "share" (of 65535)
//	GET  /v1/metagraph/{netuid} {"netuid","block","subnet" (GET /v1/subnet's object),
//	                           "neurons":[{"uid","hotkey","coldkey",
//	                           "stake","take","active","validator_permit",
//	                           "validator_trust","consensus","incentive","dividends",
//	                           "emission","stake_weight","last_update","registered_at",
//	                           "axon":{"host","port","tls_key","block"},
//	                           "weights":[[uid,value]…],"bonds":[[uid,value]…]}]}
//	GET  /v1/globals           {"issuance","burned","locked","total_stake","last_lock",
//	                           "network_last_registered","next_proposal","params":{…}}
//	GET  /v1/proposals         the newest governance proposals first, at most 100
//	                           (?limit=N): [{"id","proposer","status" (open, passed,
//	                           rejected),"action" (set_param, approve_firmware),
//	                           "param","value","firmware_hash","firmware_version",
//	                           "description","start","end","aye","nay"}]; aye and
//	                           nay are stake (rao)
//	GET  /v1/block/{height}    header fields ("height","hash","chain_id","parent",
//	                           "time_ms","tx_root","state_root","events_root",
//	                           "val_set_hash","next_val_set_hash","last_commit_hash",
//	                           "proposer","proposer_sig") and "txs":[{"hash","signer",
//	                           "nonce","valid_until","kind","call","ok","error"}];
//	                           404 when pruned or not yet produced
//	GET  /v1/events/{height}   [{"kind":"transfer","tx_index","netuid","account",
//	                           "other","uid","amount","value","error"}]
//	GET  /v1/stream            newline-delimited JSON, one {"height","hash","time_ms",
//	                           "state_root","txs","events"} per new block, flushed
//	GET  /v1/firmware/{sha256} whether governance approved the firmware release
//	                           with that binary hash (see FirmwareApproval)
//	POST /v1/probe             {"host","port","key"} → ProbeReport: a peer dials
//	                           that QUIC endpoint back (is it reachable from
//	                           outside?); "no-peers" without p2p
//
// "call" is the call struct as encoding/json writes it (Go field names, for
// example {"To":"5…","Amount":1000}). "pending_nonce" is the nonce the
// account's next new transaction should use, counting its pending ones.
// GET /v1/tx knows the transactions of the last KeepBlocks blocks (rebuilt
// in the background after a restart) and, for a while, why a transaction
// was dropped from the mempool.
package node
