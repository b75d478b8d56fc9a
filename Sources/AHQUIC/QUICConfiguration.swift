import AHSPIFFE
import Foundation
import NIOCore

/// Tunables for one endpoint. Defaults suit an access point with thousands of mostly idle
/// executors that occasionally move bulk data (SSH tunnels, workspace sync).
public struct QUICConfiguration: Sendable {
    /// ALPN protocol; both sides must agree or the handshake fails.
    public var alpn: String = "ah/1"
    /// Our certificate + key and the bundle we verify peers against.
    public var identity: TLSIdentity
    /// Which peer SPIFFE IDs we accept. Checked during the handshake.
    public var peerPolicy: PeerPolicy
    /// Server only: further ALPNs accepted besides `alpn` (e.g. the enrollment protocol).
    public var additionalALPNs: [String] = []
    /// Server only: ALPNs on which a client may connect without a certificate. Such
    /// connections have no `peerIdentity`; the application decides what they may do.
    public var clientCertificateOptionalALPNs: Set<String> = []
    /// How the peer's chain is verified: against `identity.trustBundle`, or (a client's
    /// first contact, before it has a bundle) against a CA pinned by SHA-256.
    public var trust: PeerTrust = .bundle
    /// Called during the handshake after the chain and `peerPolicy` passed; returns a
    /// refusal reason, or nil to accept. Runs on the event loop: keep it fast (in-memory).
    public var peerAuthorizer: (@Sendable (VerifiedPeer) -> String?)?
    /// Sent as SNI by clients; not used for verification (identity is the SPIFFE ID).
    public var serverName: String = "ah"

    /// Close the connection when nothing arrives for this long (both sides advertise it;
    /// the effective value is the smaller of the two).
    public var idleTimeout: TimeAmount = .seconds(30)
    /// Send a PING when nothing was sent for this long, so idle-but-alive paths stay open.
    /// `nil` disables keep-alive.
    public var keepAliveInterval: TimeAmount? = .seconds(10)
    /// Give up on a handshake that has not completed within this time.
    public var handshakeTimeout: TimeAmount = .seconds(10)

    /// Initial per-stream receive window (bytes the peer may send before we consume).
    public var initialStreamWindow: UInt64 = 512 * 1024
    /// Initial connection receive window across all streams.
    public var initialConnectionWindow: UInt64 = 4 * 1024 * 1024
    /// Upper bounds for ngtcp2's window auto-tuning. They bound what a peer can make us buffer.
    public var maxStreamWindow: UInt64 = 8 * 1024 * 1024
    public var maxConnectionWindow: UInt64 = 16 * 1024 * 1024
    /// How many concurrent peer-initiated streams we allow (replenished as they close).
    public var maxConcurrentBidirectionalStreams: UInt64 = 1024
    public var maxConcurrentUnidirectionalStreams: UInt64 = 128

    /// Largest UDP payload we send. 1452 fits Ethernet with IPv6 headers.
    public var maxUDPPayloadSize: Int = 1452
    /// Largest UDP payload we send, once the handshake is done, to a peer on a loopback
    /// address (no link in between; the loopback MTU is 64 KiB). `nil`: `maxUDPPayloadSize`
    /// there too. See `DatagramSizing`.
    public var loopbackUDPPayloadSize: Int? = 65_507
    /// Congestion control algorithm.
    public var congestionControl: CongestionControl = .cubic

    /// Server only: require address validation with a stateless Retry before any state is kept.
    public var requireRetry: Bool = true
    /// Server only: the 32-byte secret that derives stateless reset tokens (nil: random per
    /// process). Keep it across restarts: a restarted server then answers packets of its
    /// previous run's connections with a stateless reset, and those peers reconnect at once
    /// instead of waiting out their idle timeout.
    public var statelessResetSecret: [UInt8]?
    /// Server only: at most this many stateless resets per second (they answer unknown
    /// packets, so they are bounded like any reply to unauthenticated input).
    public var maxStatelessResetsPerSecond: Int = 100
    /// Server only: at most this many live connections; further Initials are refused.
    public var maxConnections: Int = 10_000
    /// Server only: at most this many handshakes in progress at once.
    public var maxHandshakesInFlight: Int = 256

    /// Per-stream outbound buffering (bytes queued but not yet handed to QUIC) at which the
    /// stream channel reports not writable, and at which it becomes writable again.
    public var streamWriteBufferHigh: Int = 1024 * 1024
    public var streamWriteBufferLow: Int = 256 * 1024

    /// Use UDP GSO (send) and GRO (receive) where the kernel supports them: batches of
    /// packets cross the kernel in one call instead of one call each.
    public var useSegmentationOffload: Bool = true

    /// Socket buffer sizes for the UDP socket (the kernel may clamp them).
    public var socketReceiveBufferSize: Int = 4 * 1024 * 1024
    public var socketSendBufferSize: Int = 4 * 1024 * 1024

    public enum CongestionControl: Sendable {
        case reno, cubic, bbr
    }

    public init(identity: TLSIdentity, peerPolicy: PeerPolicy) {
        self.identity = identity
        self.peerPolicy = peerPolicy
    }
}

/// How peer certificate chains are anchored.
public enum PeerTrust: Sendable, Hashable {
    /// The CA certificates in `TLSIdentity.trustBundle`.
    case bundle
    /// The CA whose DER certificate has this SHA-256; the peer must send it in its chain.
    /// The peer's ID must then lie under `expectedPath` in the trust domain named by that
    /// CA's URI SAN (`spiffe://TD`); `peerPolicy` is not consulted. This is how a new
    /// executor, which knows only a pin, checks that it talks to that CA's access point.
    case pinnedCA(sha256: [UInt8], expectedPath: String)
}

/// What the handshake established about the peer, for `peerAuthorizer`.
public struct VerifiedPeer: Sendable {
    public let id: SPIFFEID
    /// SHA-256 of the leaf's DER SubjectPublicKeyInfo: binds the identity to one key.
    public let publicKeySHA256: [UInt8]
    /// The leaf's expiry and serial number (hex), for records of certificates we did not issue.
    public let notAfter: Date
    public let serialHex: String
}

extension TimeAmount {
    /// ngtcp2 durations are nanoseconds.
    var ngtcp2Duration: UInt64 { UInt64(max(0, nanoseconds)) }
}
