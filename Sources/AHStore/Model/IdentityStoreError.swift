import Foundation

/// Why an identity operation was refused. Each case reads as a complete sentence for logs,
/// and `reason` is a short stable code for history rows, metrics and API errors.
public enum IdentityStoreError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No token has this hash (never created, mistyped, or purged).
    case tokenUnknown
    case tokenExpired(id: String, expiredAt: Date)
    case tokenUsedUp(id: String)
    case tokenRevoked(id: String)
    /// `createJoinToken` with an id or hash that already exists.
    case tokenExists(id: String)
    /// `revokeJoinToken` / `joinToken` with an id that does not exist.
    case tokenIDUnknown(id: String)
    /// The name is enrolled to a different key and that identity has not been revoked.
    case nameTaken(String)
    case unknownExecutor(String)
    /// The identity was revoked; renewals and reconnects are refused until it re-enrolls.
    case executorRevoked(String, reason: String?)
    case invalidArgument(String)
    /// A stored row cannot be decoded (hand-edited or damaged file).
    case corruptRow(String)

    public var reason: String {
        switch self {
        case .tokenUnknown: return "token-unknown"
        case .tokenExpired: return "token-expired"
        case .tokenUsedUp: return "token-used-up"
        case .tokenRevoked: return "token-revoked"
        case .tokenExists: return "token-exists"
        case .tokenIDUnknown: return "token-id-unknown"
        case .nameTaken: return "name-taken"
        case .unknownExecutor: return "unknown-executor"
        case .executorRevoked: return "executor-revoked"
        case .invalidArgument: return "invalid-argument"
        case .corruptRow: return "corrupt-row"
        }
    }

    public var description: String {
        switch self {
        case .tokenUnknown:
            return "join token is not known to this access point (mistyped, or from another access point)"
        case let .tokenExpired(id, at):
            return "join token \(id) expired at \(ISO8601DateFormatter().string(from: at)); create a new one with `ah token create`"
        case let .tokenUsedUp(id):
            return "join token \(id) has no uses left; create a new one with `ah token create`"
        case let .tokenRevoked(id):
            return "join token \(id) was revoked"
        case let .tokenExists(id):
            return "a join token with id \(id) or the same secret already exists"
        case let .tokenIDUnknown(id):
            return "no join token has id \(id)"
        case let .nameTaken(name):
            return "executor name \(name) is enrolled with a different key; revoke it first (`ah executors revoke \(name)`)"
        case let .unknownExecutor(name):
            return "no executor named \(name) is enrolled"
        case let .executorRevoked(name, reason):
            return "executor \(name) was revoked" + (reason.map { " (\($0))" } ?? "") + "; it must enroll again with a new join token"
        case let .invalidArgument(what):
            return "invalid argument: \(what)"
        case let .corruptRow(what):
            return "state file holds an unreadable row: \(what)"
        }
    }
}
