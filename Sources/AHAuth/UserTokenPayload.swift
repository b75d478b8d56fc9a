import Foundation
import JWTKit

/// The JWT body as it travels. Every field is optional so that a token missing a claim decodes
/// and is then refused with a precise reason (`missing sub`) rather than a decoding error;
/// the role stays a string for the same reason (`unknown role 'wizard'`).
struct UserTokenPayload: JWTPayload {
    var sub: SubjectClaim?
    var role: String?
    var aud: AudienceClaim?
    var iss: IssuerClaim?
    var iat: IssuedAtClaim?
    var exp: ExpirationClaim?
    var jti: IDClaim?

    /// From plain values (nil leaves the claim out): lets tests build payloads without JWTKit.
    init(subject: String?, role: String?, audience: [String]?, issuer: String?, issuedAt: Date?, expiresAt: Date?, tokenID: String?) {
        sub = subject.map { SubjectClaim(value: $0) }
        self.role = role
        aud = audience.map { AudienceClaim(value: $0) }
        iss = issuer.map { IssuerClaim(value: $0) }
        iat = issuedAt.map { IssuedAtClaim(value: $0) }
        exp = expiresAt.map { ExpirationClaim(value: $0) }
        jti = tokenID.map { IDClaim(value: $0) }
    }

    /// Claims are checked by `UserTokenAuthority.verify`, which owns the clock and the leeway;
    /// jwt-kit only checks the signature.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
