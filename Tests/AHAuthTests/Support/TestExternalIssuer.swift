@testable import AHAuth
import AHTestSupport
import Foundation
import JWTKit

/// An OIDC issuer stand-in: one RSA and one P-256 key, a JWKS file with their public halves
/// (written by hand, as an operator would copy it), and signing of arbitrary claims/headers.
final class TestExternalIssuer: @unchecked Sendable {
    static let issuer = "https://idp.example.com/realms/ah"
    static let audience = "ah-access"
    static let rsaKID = "rsa-1"
    static let ecKID = "ec-1"

    let directory: TemporaryDirectory
    let rsa: Insecure.RSA.PrivateKey
    let ec: ES256PrivateKey
    /// Private keys under their kids, for signing.
    let signers = JWTKeyCollection()

    var jwksPath: String { directory.file("jwks.json").path }

    init() async throws {
        directory = try TemporaryDirectory(prefix: "ah-oidc")
        rsa = try await RSATestKeys.shared.key(0)
        ec = ES256PrivateKey()
        await signers.add(rsa: rsa, digestAlgorithm: .sha256, kid: JWKIdentifier(string: Self.rsaKID))
        await signers.add(ecdsa: ec, kid: JWKIdentifier(string: Self.ecKID))
        try writeJWKS([Self.rsaJWK(rsa.publicKey, kid: Self.rsaKID), Self.ecJWK(ec.publicKey, kid: Self.ecKID)])
    }

    func configuration(roleClaim: String = "role", defaultRole: Role = .operator,
                       subjectClaim: String = "sub") -> ExternalIssuerConfiguration {
        ExternalIssuerConfiguration(issuer: Self.issuer, audience: Self.audience, jwksFile: jwksPath,
                                    roleClaim: roleClaim, defaultRole: defaultRole, subjectClaim: subjectClaim)
    }

    func load(roleClaim: String = "role", defaultRole: Role = .operator) async throws -> ExternalTokenIssuer {
        try await ExternalTokenIssuer.load(configuration(roleClaim: roleClaim, defaultRole: defaultRole))
    }

    /// Writes `keys` as `{"keys": [...]}` to the JWKS file (or `name` in the directory).
    @discardableResult
    func writeJWKS(_ keys: [[String: Any]], name: String = "jwks.json") throws -> String {
        let path = directory.file(name).path
        let data = try JSONSerialization.data(withJSONObject: ["keys": keys], options: [.sortedKeys])
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Claims every test starts from: valid for 10 minutes around `now`.
    static func claims(now: Date, subject: String = "alice") -> [String: ClaimValue] {
        [
            "iss": .string(issuer),
            "aud": .strings(["other-client", audience]),
            "sub": .string(subject),
            "iat": .number(now.timeIntervalSince1970 - 60),
            "nbf": .number(now.timeIntervalSince1970 - 60),
            "exp": .number(now.timeIntervalSince1970 + 600),
            "jti": .string("oidc-token-1"),
        ]
    }

    /// A token signed by the key registered under `kid` in `signers`; `header` overrides
    /// fields (e.g. a lying `alg` or `kid`).
    func sign(_ claims: [String: ClaimValue], kid: String = rsaKID, header: JWTHeader = JWTHeader()) async throws -> String {
        try await signers.sign(ForgedClaims(claims: claims), kid: JWKIdentifier(string: kid), header: header)
    }

    // MARK: JWK JSON, built by hand

    static func rsaJWK(_ key: Insecure.RSA.PublicKey, kid: String?, alg: String? = "RS256") throws -> [String: Any] {
        let primitives = try key.getKeyPrimitives()
        var jwk: [String: Any] = ["kty": "RSA", "use": "sig", "n": base64URL(primitives.modulus),
                                  "e": base64URL(primitives.publicExponent)]
        jwk["kid"] = kid
        jwk["alg"] = alg
        return jwk
    }

    static func ecJWK(_ key: ES256PublicKey, kid: String?, alg: String? = "ES256") throws -> [String: Any] {
        guard let parameters = key.parameters else { throw TestSetupError("P-256 key has no parameters") }
        var jwk: [String: Any] = ["kty": "EC", "crv": "P-256", "x": parameters.x, "y": parameters.y]
        jwk["kid"] = kid
        jwk["alg"] = alg
        return jwk
    }
}

/// A claim value of any JSON shape a test needs.
enum ClaimValue: Encodable, Sendable {
    case string(String)
    case number(Double)
    case strings([String])
    case bool(Bool)

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .strings(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        }
    }
}

/// Whatever claims a test wants signed, including ones a real issuer would never send.
struct ForgedClaims: JWTPayload {
    var claims: [String: ClaimValue]

    init(claims: [String: ClaimValue]) { self.claims = claims }

    init(from decoder: any Decoder) throws { claims = [:] }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: ExternalTokenPayload.ClaimKey.self)
        for (name, value) in claims {
            try container.encode(value, forKey: ExternalTokenPayload.ClaimKey(stringValue: name))
        }
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// 2048-bit RSA keys from certtool, made once per test run: generation takes a while.
actor RSATestKeys {
    static let shared = RSATestKeys()
    private var keys: [Int: Insecure.RSA.PrivateKey] = [:]

    func key(_ index: Int) async throws -> Insecure.RSA.PrivateKey {
        if let key = keys[index] { return key }
        let key = try await Self.generate(bits: 2048)
        keys[index] = key
        return key
    }

    static func generate(bits: Int) async throws -> Insecure.RSA.PrivateKey {
        guard let certtool = Executables.find("certtool", alsoIn: ["/usr/bin"]) else {
            throw TestSetupError("certtool not found (apt-get install gnutls-bin)")
        }
        let result = try await ProcessRunner.run(certtool, ["--generate-privkey", "--rsa", "--bits", "\(bits)", "--no-text"])
        guard result.exit == .exited(0) else { throw TestSetupError("certtool failed: \(result.transcript)") }
        return try Insecure.RSA.PrivateKey(pem: result.stdoutString)
    }
}

/// A test fixture could not be set up (missing tool, unexpected key shape).
struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
