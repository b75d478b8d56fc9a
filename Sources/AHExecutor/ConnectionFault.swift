import AHControl
import AHQUIC

/// Why a connection attempt or a connection ended, sorted into what retrying can fix and what
/// it cannot. Only the access point's own refusal of this identity is permanent (it answers
/// every later handshake the same way); unreachable, timeouts, resets, restarts, a broken
/// control stream are transient and retried with backoff forever.
public enum ConnectionFault: Equatable, Sendable {
    /// The access point refuses this identity: `ah agent enroll` exits 3 (the systemd unit's
    /// `RestartPreventExitStatus=3` then stops restarting it).
    case permanent(String)
    /// The access point told us over a live connection that we were revoked: confirmed by the
    /// next handshake (reconnect at once), whose refusal is permanent.
    case revokedWhileConnected(String)
    case transient(String)

    /// The refusal reasons an access point gives in the handshake for an identity it will
    /// never accept again (its KnownExecutors): after `ah executors revoke`, or a name now
    /// enrolled with another key.
    static let permanentRefusals = ["refused: identity revoked", "refused: certificate key does not match the enrolled key"]

    public init(_ error: Error) {
        let text = "\(error)"
        if let quic = error as? QUICError {
            switch quic {
            case .closedByPeer(let info) where Self.permanentRefusals.contains(where: info.reason.contains):
                self = .permanent(info.reason)
                return
            case .handshakeFailed(let reason) where Self.permanentRefusals.contains(where: reason.contains):
                self = .permanent(reason)
                return
            case .closedByPeer(let info) where info.kind == .application && info.code == ConnectionCloseCode.revoked:
                self = .revokedWhileConnected(info.reason.isEmpty ? "identity revoked" : info.reason)
                return
            default:
                break
            }
        }
        self = .transient(text)
    }

    /// The message `ah agent enroll` exits with for a permanent refusal.
    static func exitMessage(_ reason: String, remote: String) -> String {
        "the access point at \(remote) refuses this executor (\(reason)): it was revoked or its name was enrolled again "
            + "with another key; enroll again with a new --token"
    }
}
