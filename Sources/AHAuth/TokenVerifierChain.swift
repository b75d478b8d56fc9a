import Foundation

/// The one verifier the CONNECT and REST handlers use: ah's own tokens and, when configured,
/// one external issuer's.
///
/// It routes on the *unverified* `iss` claim only to pick the verifier; the chosen verifier
/// then checks everything, including `iss` again, so a forged `iss` can at most select a
/// verifier that refuses the token.
public struct TokenVerifierChain: UserTokenVerifying {
    /// Tokens larger than this are refused as malformed before any decoding.
    public static let maxTokenBytes = UnverifiedJWT.maxTokenBytes

    public let local: UserTokenAuthority
    public let external: ExternalTokenIssuer?

    public init(local: UserTokenAuthority, external: ExternalTokenIssuer? = nil) {
        self.local = local
        self.external = external
    }

    public func verify(_ token: String, now: Date) async throws -> UserClaims {
        let issuer = try UnverifiedJWT(token).payloadString("iss")
        if issuer == UserTokenAuthority.issuer {
            return try await local.verify(token, now: now)
        }
        if let external, let issuer, issuer == external.configuration.issuer {
            return try await external.verify(token, now: now)
        }
        throw UserTokenError.wrongIssuer
    }
}
