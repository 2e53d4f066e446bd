// Package dashboard is the operator's live view of one appliance: the
// chain head and finality, the state of each role (node, miner,
// validator), a subnet's metagraph with the operator's own uids marked,
// when their next weights are legal, the registration price, how close
// each of them is to being pruned ("eviction risk"), and whether their
// served endpoint answers a QUIC handshake, from this machine and from a
// peer of the node that connects back.
//
// The package has three layers:
//
//   - a pure model: Snapshot holds what the node's local JSON API
//     (chain/node), the roles' /metrics and /healthz endpoints and the
//     reachability probe returned at one moment; the derivations
//     (Evictions, NextWeightWindow, RegistrationPrice, NextEpoch) and
//     Render are pure functions of it, table-tested without a network;
//   - decoders of untrusted bytes with size caps: ParseMetrics (the
//     Prometheus text format), ParseHealth (the /healthz JSON) and
//     Head's JSON (tolerant of fields a newer node adds: "finalized",
//     "peers", "syncing", "sync_target");
//   - the edges: ProbeAxon dials an advertised endpoint over QUIC with the
//     task protocol's ALPN and key pinning, and Run drives a bubbletea v2
//     program (keys q, tab, s, S, r) around a Source that reads snapshots.
//
// The chain rules it mirrors are chain/state's (chain-rules.md §1 and §4):
// a full subnet replaces, at each registration, the non-immune uid (other
// than the owner's hotkey) with the lowest emission, then the earliest
// registration, then the lowest uid; a uid is immune while
// block - registered_at < immunity_period; weights are legal at block b
// when last_update is 0 or b - last_update >= weights_rate_limit; the
// burn is multiplied by burn_increase_mult/1000 after each registration
// (clamped to [min_burn, max_burn]) and halves every burn_half_life blocks.
//
// Design note: reachability is checked twice. ProbeAxon dials from this
// machine, which proves that the address, the port, the key and the ALPN
// are right and that the miner is serving, but not that the port is open
// from the internet (a NAT may hairpin). The connect-back check
// (Probe.Peer) asks the node (POST /v1/probe), which asks one of its
// peers to dial the endpoint from outside (ReqProbe, docs/p2p.md); a peer
// dials only the address the node connects from, so the endpoint must be
// served from the node's public IP. A private or loopback address is
// reported as such, since no one outside can reach it.
package dashboard
