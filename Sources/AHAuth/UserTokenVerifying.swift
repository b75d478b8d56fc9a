import Foundation

/// Anything that turns a bearer token into verified claims: the access point's own key, an
/// external OIDC issuer, or the chain that routes between them. The CONNECT and REST handlers
/// depend on this rather than on one issuer, so adding an issuer does not touch them.
public protocol UserTokenVerifying: Sendable {
    /// The claims of a valid token; throws `UserTokenError` naming the failed check.
    func verify(_ token: String, now: Date) async throws -> UserClaims
}

extension UserTokenAuthority: UserTokenVerifying {
    /// `verify(_:audience:now:)` for the default audience: what a CONNECT or REST client sends.
    public func verify(_ token: String, now: Date) async throws -> UserClaims {
        try await verify(token, audience: Self.defaultAudience, now: now)
    }
}
