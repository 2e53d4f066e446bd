// Package p2p is the chain's peer-to-peer transport: QUIC (quic-go) with
// TLS 1.3 bound to the node's ed25519 key, moving typed byte payloads
// (chain/types MsgType) between authenticated peers and enforcing limits.
// It knows nothing about blocks or consensus; the node plugs in through
// Handler.
//
// Wire protocol (docs/p2p.md has the full description):
//
//   - One UDP socket and one quic.Transport per node, used to listen and to
//     dial. ALPN "taobox/p2p/1". Both sides present a self-signed
//     certificate whose key is their ed25519 node key; PeerID = that key.
//     No CA, no names, no session tickets, no 0-RTT. Dialling
//     "id@host:port" refuses a server with another key (ErrKeyMismatch).
//   - One connection per peer pair: when both dial, the connection dialled
//     by the lower id is kept (CodeDuplicate closes the other).
//   - After the handshake each side sends ReqHello {version, chain id,
//     listen port, Status}; another chain or version closes the connection
//     with CodeWrongChain / CodeWrongVersion and a warning log line.
//   - Gossip: one unidirectional stream per message, [type u8][len u32]
//     [payload]. Request: one bidirectional stream, [type u8][len u32]
//     [payload] FIN; response [status u8][len u32][payload] FIN.
//   - Every frame is read through an io.LimitReader with its type's cap
//     (MsgType.MaxMessage / MaxResponse); a longer announced length is
//     misbehaviour: the peer is banned (Config.BanDuration) and
//     disconnected.
//
// Limits: an inbound connection takes a MaxInbound / MaxPerIP slot only
// once its source address is proven (when the client's certificate
// arrives in the TLS handshake); before that, Transport.ConnContext only
// bounds the handshakes in progress (MaxHandshaking) and, past half of
// them or HandshakeRate, VerifySourceAddress demands a QUIC Retry, so
// spoofed-source packets hold no slots. Banned ids are refused during the
// TLS handshake; per-peer token buckets (gossip messages, requests, bytes)
// drop what exceeds them and ban a peer that keeps exceeding them;
// Handler.Serve runs under a global semaphore (Config.ServeConcurrency);
// every request and gossip stream has a deadline (Config.RequestTimeout);
// responses a requester does not read are bounded (MaxPendingPerPeer,
// MaxPendingBytes, ResponseWriteTimeout) and their streams reset.
//
// The dialler (Start) keeps bootstrap peers connected with exponential
// backoff, asks peers for their peers (ReqPeers) every PexInterval, fills
// free outbound slots from what it learned, and refreshes each peer's
// Status with a new Hello.
//
// Bans, token buckets and PeerInfo.Since read Config.Now, so tests drive
// them; QUIC's own timers and the dialler use the real clock.
package p2p
