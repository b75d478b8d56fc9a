import Foundation

/// The kind of an identity decision. A string wrapper rather than an enum so that rows
/// written by a newer version (or the other backend) still decode.
public struct HistoryKind: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }

    public var description: String { rawValue }

    public static let enrolled: HistoryKind = "enrolled"
    public static let renewed: HistoryKind = "renewed"
    public static let revoked: HistoryKind = "revoked"
    /// An enrollment attempt that was refused (bad token, name taken, bad request).
    public static let refused: HistoryKind = "refused"
    public static let renewalRefused: HistoryKind = "renewal-refused"
    public static let reconnectRefused: HistoryKind = "reconnect-refused"
    public static let tokenCreated: HistoryKind = "token-created"
    public static let tokenRevoked: HistoryKind = "token-revoked"
}

/// One row of the identity history (audit trail).
public struct HistoryEntry: Sendable, Equatable, Codable {
    public let id: Int64
    public let at: Date
    public let kind: HistoryKind
    public let executorName: String?
    public let spiffeID: String?
    /// Human-readable reason and facts (token id, key fingerprint, serial, ...).
    public let detail: String

    public init(id: Int64, at: Date, kind: HistoryKind, executorName: String?, spiffeID: String?, detail: String) {
        self.id = id
        self.at = at
        self.kind = kind
        self.executorName = executorName
        self.spiffeID = spiffeID
        self.detail = detail
    }
}
