import AHSPIFFE
import AHLogFields
import NIOCore

/// What happened to a server's connections, for logs, metrics and tests that await events
/// instead of polling.
public enum QUICServerEvent: Sendable, CustomStringConvertible {
    /// A peer completed the handshake and passed the peer policy.
    case connected(peer: SPIFFEID, remote: SocketAddress)
    /// A handshake ended without a connection (refused certificate, policy, timeout, ...).
    case refused(reason: QUICError, remote: SocketAddress)
    /// An established connection ended.
    case closed(peer: SPIFFEID?, reason: QUICError)

    public var description: String {
        switch self {
        case .connected(let peer, let remote): return "connected \(peer) from \(remote.hostPort)"
        case .refused(let reason, let remote): return "refused \(remote.hostPort): \(reason)"
        case .closed(let peer, let reason): return "closed \(peer.map { "\($0)" } ?? "?"): \(reason)"
        }
    }
}
