import Foundation
import JWTKit

/// Verifies tokens minted by an external OIDC issuer against the public keys in a local JWKS
/// file, so users can sign in with the organisation's identity provider instead of asking an
/// admin for `ah user token`.
///
/// Order of checks: size, header (`alg` must be RS256/ES256 and match the key its `kid`
/// names), signature, then `iss`, `aud`, `exp`, `nbf`/`iat`, subject and role. Nothing from the
/// token is trusted before the signature check except what selects the key.
public final class ExternalTokenIssuer: UserTokenVerifying, @unchecked Sendable {
    /// Same tolerance as ah's own tokens.
    public static let leeway: TimeInterval = UserTokenAuthority.leeway
    /// Subjects longer than this are refused: they end up in logs and ACL messages.
    public static let maxSubjectBytes = 256

    public let configuration: ExternalIssuerConfiguration

    /// Swapped whole by `reload()`; read once per verification. Guarded by `lock`.
    private var keySet: ExternalKeySet
    private let lock = NSLock()

    private init(configuration: ExternalIssuerConfiguration, keySet: ExternalKeySet) {
        self.configuration = configuration
        self.keySet = keySet
    }

    /// Reads the JWKS file; throws `UserTokenError.issuerConfiguration` naming the file and
    /// the offending key, so `ah serve` can refuse to start with a useful message.
    public static func load(_ configuration: ExternalIssuerConfiguration) async throws -> ExternalTokenIssuer {
        try configuration.validate()
        let keySet = try await ExternalKeySet.load(path: configuration.jwksFile)
        return ExternalTokenIssuer(configuration: configuration, keySet: keySet)
    }

    /// Re-reads the JWKS file (after the issuer rotated keys). On failure the keys in use stay
    /// as they were, so a half-written file cannot lock everyone out.
    public func reload() async throws {
        let fresh = try await ExternalKeySet.load(path: configuration.jwksFile)
        lock.withLock { keySet = fresh }
    }

    /// How many keys the JWKS file held at the last (re)load: for the start-up log line.
    public var keyCount: Int { lock.withLock { keySet.keys.count } }

    public func verify(_ token: String, now: Date) async throws -> UserClaims {
        let keySet = lock.withLock { self.keySet }
        let header = try UnverifiedJWT(token).header
        guard let algorithm = header["alg"] as? String else { throw UserTokenError.malformed }
        guard ExternalKeySet.acceptedAlgorithms.contains(algorithm) else {
            throw UserTokenError.unsupportedAlgorithm(algorithm)
        }
        // Extensions we do not implement must not be silently ignored (RFC 7515 §4.1.11).
        guard header["crit"] == nil else { throw UserTokenError.malformed }
        let kid: String?
        switch header["kid"] {
        case nil: kid = nil
        case let string as String: kid = string
        default: throw UserTokenError.malformed
        }
        guard let key = keySet.key(forKID: kid) else { throw UserTokenError.unknownSigningKey(kid: kid) }
        guard key.algorithm == algorithm else { throw UserTokenError.unsupportedAlgorithm(algorithm) }

        let payload: ExternalTokenPayload
        do {
            payload = try await keySet.collection.verify(token, as: ExternalTokenPayload.self)
        } catch {
            throw UserTokenError(verificationFailure: error)
        }
        return try claims(from: payload.claims, now: now)
    }

    /// The checks after the signature: issuer, audience, lifetime, subject, role.
    private func claims(from claims: [String: ExternalTokenPayload.Value], now: Date) throws(UserTokenError) -> UserClaims {
        guard case .string(configuration.issuer)? = claims["iss"] else { throw .wrongIssuer }

        let audiences: [String]
        switch claims["aud"] {
        case .string(let audience)?: audiences = [audience]
        case .strings(let list)?: audiences = list
        default: audiences = []
        }
        guard audiences.contains(configuration.audience) else { throw .wrongAudience(expected: configuration.audience) }

        guard let expiresAt = try time(claims["exp"]) else { throw .missingExpiry }
        guard now < expiresAt.addingTimeInterval(Self.leeway) else { throw .expired }
        let notBefore = try time(claims["nbf"])
        let issuedAt = try time(claims["iat"])
        for start in [notBefore, issuedAt].compactMap({ $0 }) where start > now.addingTimeInterval(Self.leeway) {
            throw .notYetValid
        }

        guard case .string(let subject)? = claims[configuration.subjectClaim], !subject.isEmpty else {
            throw .missingSubject
        }
        guard subject.utf8.count <= Self.maxSubjectBytes else {
            throw .invalidSubject("longer than \(Self.maxSubjectBytes) bytes")
        }
        guard !subject.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .invalidSubject("contains control characters")
        }

        let role: Role
        switch claims[configuration.roleClaim] {
        case nil:
            role = configuration.defaultRole
        case .string(let name)?:
            guard let known = Role(rawValue: name) else { throw .unknownRole(UserTokenError.printable(name)) }
            role = known
        case .some:
            throw .unknownRole("(not a string)")
        }

        // Audit logs name tokens by jti; an issuer's is not ours to trust with the log format.
        let tokenID: String?
        if case .string(let jti)? = claims["jti"] { tokenID = UserTokenError.printable(jti, limit: 128) } else { tokenID = nil }
        return UserClaims(subject: subject, role: role, audience: audiences, issuedAt: issuedAt,
                          expiresAt: expiresAt, tokenID: tokenID)
    }

    /// A NumericDate claim; nil when absent, malformed when present but not a finite number.
    private func time(_ value: ExternalTokenPayload.Value?) throws(UserTokenError) -> Date? {
        switch value {
        case nil: return nil
        case .number(let seconds)? where seconds.isFinite: return Date(timeIntervalSince1970: seconds)
        default: throw .malformed
        }
    }
}
