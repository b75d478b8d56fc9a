import Foundation
import JWTKit

/// The access point's user-token key: mints the JWTs `ah user token` prints and verifies the
/// ones clients present (`Authorization` for REST, later `Proxy-Authorization` for CONNECT).
///
/// ES256 (P-256): small signatures, and the same curve as the rest of ah's identities. The key
/// lives in `DATA_DIR/jwt-signing-key.pem` (0600), so tokens stay valid across restarts and
/// `ah user token` can mint offline on the access point host. Tokens are never logged.
public final class UserTokenAuthority: Sendable {
    /// `iss` of every token we mint; others are refused.
    public static let issuer = "ah"
    public static let defaultAudience = "ah"
    /// Clock skew tolerated on `exp` and `iat`: enough for hosts a little out of sync, small
    /// enough that an expired token is not usable for long.
    public static let leeway: TimeInterval = 30

    private let keys: JWTKeyCollection
    /// Where the key was loaded from; nil for an in-memory key.
    public let keyPath: String?

    private init(key: ES256PrivateKey, keyPath: String?) async {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: key)
        self.keys = keys
        self.keyPath = keyPath
    }

    /// The data dir's key, created on first use. The directory must already exist
    /// (`ah serve` creates it with mode 0700).
    public static func loadOrCreate(dataDirectory: String) async throws -> UserTokenAuthority {
        let path = SigningKeyFile.path(in: dataDirectory)
        if let pem = try SigningKeyFile.read(at: path) {
            return try await UserTokenAuthority(pem: pem, path: path)
        }
        let fresh = ES256PrivateKey()
        if try SigningKeyFile.createExclusively(fresh.pemRepresentation, at: path) {
            return await UserTokenAuthority(key: fresh, keyPath: path)
        }
        // Another process created it between our read and our link: use theirs.
        guard let pem = try SigningKeyFile.read(at: path) else { throw UserTokenError.noSigningKey(directory: dataDirectory) }
        return try await UserTokenAuthority(pem: pem, path: path)
    }

    /// The data dir's existing key; `.noSigningKey` when the access point never ran there.
    public static func load(dataDirectory: String) async throws -> UserTokenAuthority {
        let path = SigningKeyFile.path(in: dataDirectory)
        guard let pem = try SigningKeyFile.read(at: path) else { throw UserTokenError.noSigningKey(directory: dataDirectory) }
        return try await UserTokenAuthority(pem: pem, path: path)
    }

    /// A key that lives only in memory: for tests, and for a server that must not persist one.
    public static func ephemeral() async -> UserTokenAuthority {
        await UserTokenAuthority(key: ES256PrivateKey(), keyPath: nil)
    }

    private convenience init(pem: String, path: String) async throws {
        let key: ES256PrivateKey
        do { key = try ES256PrivateKey(pem: pem) } catch {
            throw UserTokenError.keyFile("\(path) is not a PEM P-256 private key")
        }
        await self.init(key: key, keyPath: path)
    }

    // MARK: Minting

    /// A signed token for `subject`, valid for `ttl` seconds from `now` (whole seconds).
    public func mint(subject: String, role: Role, ttl: TimeInterval, audience: String = defaultAudience,
                     now: Date = Date()) async throws -> String {
        try await issue(subject: subject, role: role, ttl: ttl, audience: audience, now: now).token
    }

    /// `mint`, also returning the claims as signed (e.g. for `expiresAt` in `--json` output).
    public func issue(subject: String, role: Role, ttl: TimeInterval, audience: String = defaultAudience,
                      now: Date = Date()) async throws -> IssuedUserToken {
        guard !subject.isEmpty else { throw UserTokenError.invalidRequest("subject must not be empty") }
        guard !audience.isEmpty else { throw UserTokenError.invalidRequest("audience must not be empty") }
        guard ttl.isFinite, ttl >= 1 else { throw UserTokenError.invalidRequest("lifetime must be at least 1 second") }
        // JWT times are whole seconds; round here so the returned claims equal what verify sees.
        let issuedAt = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let expiresAt = issuedAt.addingTimeInterval(ttl.rounded(.down))
        let tokenID = Self.randomTokenID()
        let payload = UserTokenPayload(subject: subject, role: role.rawValue, audience: [audience], issuer: Self.issuer,
                                       issuedAt: issuedAt, expiresAt: expiresAt, tokenID: tokenID)
        let token = try await keys.sign(payload)
        let claims = UserClaims(subject: subject, role: role, audience: [audience], issuedAt: issuedAt,
                                expiresAt: expiresAt, tokenID: tokenID)
        return IssuedUserToken(token: token, claims: claims)
    }

    /// Signs an arbitrary payload with this key: lets tests forge tokens that only the claim
    /// checks (not the signature) should refuse.
    func sign(_ payload: UserTokenPayload) async throws -> String {
        try await keys.sign(payload)
    }

    // MARK: Verifying

    /// The claims of a token we signed that is current, meant for `audience`, and names a
    /// known role and a subject. Throws `UserTokenError` saying which check failed.
    public func verify(_ token: String, audience: String = defaultAudience, now: Date = Date()) async throws -> UserClaims {
        let payload: UserTokenPayload
        do {
            payload = try await keys.verify(token, as: UserTokenPayload.self)
        } catch {
            throw UserTokenError(verificationFailure: error)
        }
        guard let expiresAt = payload.exp?.value else { throw UserTokenError.missingExpiry }
        guard now < expiresAt.addingTimeInterval(Self.leeway) else { throw UserTokenError.expired }
        if let issuedAt = payload.iat?.value, issuedAt > now.addingTimeInterval(Self.leeway) {
            throw UserTokenError.notYetValid
        }
        guard let audiences = payload.aud?.value, audiences.contains(audience) else {
            throw UserTokenError.wrongAudience(expected: audience)
        }
        guard payload.iss?.value == Self.issuer else { throw UserTokenError.wrongIssuer }
        guard let roleName = payload.role, let role = Role(rawValue: roleName) else {
            throw UserTokenError.unknownRole(payload.role ?? "")
        }
        guard let subject = payload.sub?.value, !subject.isEmpty else { throw UserTokenError.missingSubject }
        return UserClaims(subject: subject, role: role, audience: audiences, issuedAt: payload.iat?.value,
                          expiresAt: expiresAt, tokenID: payload.jti?.value)
    }

    /// 128 random bits, hex: unique per token so that audit logs can name a token without it.
    private static func randomTokenID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let word = generator.next() as UInt64
            let hex = String(word, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }
}

/// A freshly minted token with the claims it carries.
public struct IssuedUserToken: Sendable {
    public let token: String
    public let claims: UserClaims
}
