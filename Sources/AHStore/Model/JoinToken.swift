import Foundation

/// What a successful redemption hands to the enrollment service.
public struct JoinTokenGrant: Sendable, Equatable, Codable {
    /// The token's public id (for logs and history; never the secret).
    public let tokenID: String
    /// Tags the operator bound to the token; they apply to the executor enrolled with it.
    public let tags: [String: String]
    /// Uses remaining after this redemption.
    public let usesLeft: Int
    public let expiresAt: Date

    public init(tokenID: String, tags: [String: String], usesLeft: Int, expiresAt: Date) {
        self.tokenID = tokenID
        self.tags = tags
        self.usesLeft = usesLeft
        self.expiresAt = expiresAt
    }
}

/// A stored join token as an operator may inspect it. The hash is left out on purpose:
/// nothing outside redemption needs it.
public struct JoinTokenRecord: Sendable, Equatable, Codable {
    public let id: String
    public let createdAt: Date
    public let expiresAt: Date
    public let usesLeft: Int
    public let tags: [String: String]
    public let revoked: Bool

    public init(id: String, createdAt: Date, expiresAt: Date, usesLeft: Int, tags: [String: String], revoked: Bool) {
        self.id = id
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.usesLeft = usesLeft
        self.tags = tags
        self.revoked = revoked
    }

    /// Whether a redemption at `now` would succeed.
    public func isRedeemable(at now: Date) -> Bool {
        !revoked && usesLeft > 0 && now < expiresAt
    }
}
