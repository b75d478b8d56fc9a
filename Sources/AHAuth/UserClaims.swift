import Foundation

/// The verified identity behind a request: what `UserTokenAuthority.verify` returns after the
/// signature, lifetime, audience, role and subject have all been checked.
public struct UserClaims: Sendable, Equatable {
    public let subject: String
    public let role: Role
    public let audience: [String]
    public let issuedAt: Date?
    public let expiresAt: Date
    /// The `jti`, unique per minted token: what audit logs name instead of the token itself.
    public let tokenID: String?

    public init(subject: String, role: Role, audience: [String], issuedAt: Date?, expiresAt: Date, tokenID: String?) {
        self.subject = subject
        self.role = role
        self.audience = audience
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.tokenID = tokenID
    }
}
