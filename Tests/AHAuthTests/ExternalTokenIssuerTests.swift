@testable import AHAuth
import AHTestSupport
import Foundation
import JWTKit
import XCTest

final class ExternalTokenIssuerTests: XCTestCase {
    private let now = Date(timeIntervalSince1970: 1_800_000_000)

    // MARK: Accepted tokens

    func testRS256TokenVerifies() async throws {
        let idp = try await TestExternalIssuer()
        let issuer = try await idp.load()
        XCTAssertEqual(issuer.keyCount, 2)
        var claims = TestExternalIssuer.claims(now: now)
        claims["role"] = .string("admin")
        let token = try await idp.sign(claims, kid: TestExternalIssuer.rsaKID)
        XCTAssertEqual(try decodeSegment(token.split(separator: ".")[0])["alg"] as? String, "RS256")
        let verified = try await issuer.verify(token, now: now)
        XCTAssertEqual(verified.subject, "alice")
        XCTAssertEqual(verified.role, .admin)
        XCTAssertEqual(verified.audience, ["other-client", TestExternalIssuer.audience])
        XCTAssertEqual(verified.expiresAt, now.addingTimeInterval(600))
        XCTAssertEqual(verified.issuedAt, now.addingTimeInterval(-60))
        XCTAssertEqual(verified.tokenID, "oidc-token-1")
    }

    func testES256TokenVerifies() async throws {
        let idp = try await TestExternalIssuer()
        let issuer = try await idp.load()
        var claims = TestExternalIssuer.claims(now: now, subject: "bob")
        claims["aud"] = .string(TestExternalIssuer.audience)  // a plain string is fine too
        claims["role"] = .string("viewer")
        let token = try await idp.sign(claims, kid: TestExternalIssuer.ecKID)
        XCTAssertEqual(try decodeSegment(token.split(separator: ".")[0])["alg"] as? String, "ES256")
        let verified = try await issuer.verify(token, now: now)
        XCTAssertEqual(verified.subject, "bob")
        XCTAssertEqual(verified.role, .viewer)
        XCTAssertEqual(verified.audience, [TestExternalIssuer.audience])
    }

    func testAbsentRoleClaimGivesTheDefaultRole() async throws {
        let idp = try await TestExternalIssuer()
        let token = try await idp.sign(TestExternalIssuer.claims(now: now))
        let asOperator = try await idp.load()
        let asViewer = try await idp.load(defaultRole: .viewer)
        let operatorRole = try await asOperator.verify(token, now: now).role
        let viewerRole = try await asViewer.verify(token, now: now).role
        XCTAssertEqual(operatorRole, .operator)
        XCTAssertEqual(viewerRole, .viewer)
    }

    func testConfiguredSubjectAndRoleClaims() async throws {
        let idp = try await TestExternalIssuer()
        let issuer = try await ExternalTokenIssuer.load(
            ExternalIssuerConfiguration(issuer: TestExternalIssuer.issuer, audience: TestExternalIssuer.audience,
                                        jwksFile: idp.jwksPath, roleClaim: "ah_role", subjectClaim: "email"))
        var claims = TestExternalIssuer.claims(now: now)
        claims["email"] = .string("carol@example.com")
        claims["ah_role"] = .string("admin")
        claims["role"] = .string("wizard")  // not the configured claim: ignored
        let verified = try await issuer.verify(try await idp.sign(claims), now: now)
        XCTAssertEqual(verified.subject, "carol@example.com")
        XCTAssertEqual(verified.role, .admin)
        claims["email"] = nil
        await assertRefused(issuer, try await idp.sign(claims), .missingSubject)
    }

    func testSingleKeyWithoutKIDVerifiesTokensWithAndWithoutKID() async throws {
        let idp = try await TestExternalIssuer()
        try idp.writeJWKS([TestExternalIssuer.ecJWK(idp.ec.publicKey, kid: nil, alg: nil)])
        let issuer = try await idp.load()
        let withKID = try await idp.sign(TestExternalIssuer.claims(now: now), kid: TestExternalIssuer.ecKID)
        _ = try await issuer.verify(withKID, now: now)
        let unnamed = JWTKeyCollection()
        await unnamed.add(ecdsa: idp.ec)
        let noKID = try await unnamed.sign(ForgedClaims(claims: TestExternalIssuer.claims(now: now)))
        XCTAssertNil(try decodeSegment(noKID.split(separator: ".")[0])["kid"])
        let claims = try await issuer.verify(noKID, now: now)
        XCTAssertEqual(claims.subject, "alice")
        // The RSA key is not in this file at all.
        await assertRefused(issuer, try await idp.sign(TestExternalIssuer.claims(now: now)), .unsupportedAlgorithm("RS256"))
    }

    func testSingleKeyWithKIDVerifiesTokensWithoutKIDButNotWithAnotherKID() async throws {
        let idp = try await TestExternalIssuer()
        try idp.writeJWKS([TestExternalIssuer.ecJWK(idp.ec.publicKey, kid: TestExternalIssuer.ecKID)])
        let issuer = try await idp.load()
        _ = try await issuer.verify(try await idp.sign(TestExternalIssuer.claims(now: now), kid: TestExternalIssuer.ecKID), now: now)
        let unnamed = JWTKeyCollection()
        await unnamed.add(ecdsa: idp.ec)
        _ = try await issuer.verify(try await unnamed.sign(ForgedClaims(claims: TestExternalIssuer.claims(now: now))), now: now)
        await idp.signers.add(ecdsa: idp.ec, kid: JWKIdentifier(string: "ec-old"))
        await assertRefused(issuer, try await idp.sign(TestExternalIssuer.claims(now: now), kid: "ec-old"),
                            .unknownSigningKey(kid: "ec-old"))
    }

    // MARK: Key selection and algorithms

    func testUnknownKIDIsRefused() async throws {
        let idp = try await TestExternalIssuer()
        let issuer = try await idp.load()
        // Signed by a key that *is* in the file, but the header names another: no fallback.
        await idp.signers.add(rsa: idp.rsa, digestAlgorithm: .sha256, kid: JWKIdentifier(string: "rotated-away"))
        let token = try await idp.sign(TestExternalIssuer.claims(now: now), kid: "rotated-away")
        await assertRefused(issuer, token, .unknownSigningKey(kid: "rotated-away"))
    }

    func testMissingKIDWithSeveralKeysIsRefused() async throws {
        let idp = try await TestExternalIssuer()
        let issuer = try await idp.load()
        let unnamed = JWTKeyCollection()
        await unnamed.add(rsa: idp.rsa, digestAlgorithm: .sha256)
        let token = try await unnamed.sign(ForgedClaims(claims: TestExternalIssuer.claims(now: now)))
        await assertRefused(issuer, token, .unknownSigningKey(kid: nil))
    }

    func testTokenSignedByAKeyNotInTheJWKSIsRefused() async throws {
        let idp = try await TestExternalIssuer()
        let issuer = try await idp.load()
        let impostor = JWTKeyCollection()
        await impostor.add(rsa: try await RSATestKeys.shared.key(1), digestAlgorithm: .sha256,
                           kid: JWKIdentifier(string: TestExternalIssuer.rsaKID))
        await impostor.add(ecdsa: ES256PrivateKey(), kid: JWKIdentifier(string: TestExternalIssuer.ecKID))
        for kid in [TestExternalIssuer.rsaKID, TestExternalIssuer.ecKID] {
            let token = try await impostor.sign(ForgedClaims(claims: TestExternalIssuer.claims(now: now)), kid: JWKIdentifier(string: kid))
            await assertRefused(issuer, token, .badSignature)
        }
    }

    func testHS256WithThePublicKeyAsSecretIsRefused() async throws {
        // The classic algorithm confusion: a verifier that lets the header pick HMAC would
        // check the MAC with the public key, which the attacker knows.
        let idp = try await TestExternalIssuer()
        let issuer = try await idp.load()
        let attacker = JWTKeyCollection()
        for secret in [idp.rsa.publicKey.pemRepresentation, try String(decoding: JSONSerialization.data(
            withJSONObject: TestExternalIssuer.rsaJWK(idp.rsa.publicKey, kid: TestExternalIssuer.rsaKID)), as: UTF8.self)] {
            await attacker.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256, kid: JWKIdentifier(string: TestExternalIssuer.rsaKID))
            let token = try await attacker.sign(ForgedClaims(claims: TestExternalIssuer.claims(now: now)),
                                                kid: JWKIdentifier(string: TestExternalIssuer.rsaKID))
            XCTAssertEqual(try decodeSegment(token.split(separator: ".")[0])["alg"] as? String, "HS256")
            await assertRefused(issuer, token, .unsupportedAlgorithm("HS256"))
        }
    }

    func testAlgNoneIsRefused() async throws {
        let idp = try await TestExternalIssuer()
        let issuer = try await idp.load()
        let body = base64URL(try JSONSerialization.data(withJSONObject: [
            "iss": TestExternalIssuer.issuer, "aud": TestExternalIssuer.audience, "sub": "mallory", "role": "admin",
            "exp": now.timeIntervalSince1970 + 600,
        ]))
        for alg in ["none", "None", "NONE"] {
            let header = base64URL(Data(#"{"alg":"\#(alg)","kid":"rsa-1","typ":"JWT"}"#.utf8))
            await assertRefused(issuer, header + "." + body + ".", .unsupportedAlgorithm(alg))
        }
        let noAlg = base64URL(Data(#"{"kid":"rsa-1","typ":"JWT"}"#.utf8))
        await assertRefused(issuer, noAlg + "." + body + ".", .malformed)
    }

    func testHeaderAlgorithmMustMatchTheKey() async throws {
        let idp = try await TestExternalIssuer()
        let issuer = try await idp.load()
        // An ES256 signature presented as belonging to the RSA key, and vice versa.
        let liar = JWTKeyCollection()
        await liar.add(ecdsa: idp.ec, kid: JWKIdentifier(string: TestExternalIssuer.rsaKID))
        await liar.add(rsa: idp.rsa, digestAlgorithm: .sha256, kid: JWKIdentifier(string: TestExternalIssuer.ecKID))
        let esToken = try await liar.sign(ForgedClaims(claims: TestExternalIssuer.claims(now: now)),
                                          kid: JWKIdentifier(string: TestExternalIssuer.rsaKID))
        await assertRefused(issuer, esToken, .unsupportedAlgorithm("ES256"))
        let rsToken = try await liar.sign(ForgedClaims(claims: TestExternalIssuer.claims(now: now)),
                                          kid: JWKIdentifier(string: TestExternalIssuer.ecKID))
        await assertRefused(issuer, rsToken, .unsupportedAlgorithm("RS256"))
        // PS256 by the RSA key: a valid signature, but not an algorithm we accept.
        let pss = JWTKeyCollection()
        await pss.add(pss: idp.rsa, digestAlgorithm: .sha256, kid: JWKIdentifier(string: TestExternalIssuer.rsaKID))
        let psToken = try await pss.sign(ForgedClaims(claims: TestExternalIssuer.claims(now: now)),
                                         kid: JWKIdentifier(string: TestExternalIssuer.rsaKID))
        await assertRefused(issuer, psToken, .unsupportedAlgorithm("PS256"))
    }

    func testCriticalHeaderExtensionsAreRefused() async throws {
        let idp = try await TestExternalIssuer()
        let issuer = try await idp.load()
        var header = JWTHeader()
        header.crit = ["x-ah-unknown"]
        let token = try await idp.sign(TestExternalIssuer.claims(now: now), header: header)
        await assertRefused(issuer, token, .malformed)
    }

    func testTamperedPayloadIsRefused() async throws {
        let idp = try await TestExternalIssuer()
        let issuer = try await idp.load()
        let token = try await idp.sign(TestExternalIssuer.claims(now: now))
        var parts = token.split(separator: ".").map(String.init)
        var body = try decodeSegment(Substring(parts[1]))
        body["role"] = "admin"
        parts[1] = base64URL(try JSONSerialization.data(withJSONObject: body))
        await assertRefused(issuer, parts.joined(separator: "."), .badSignature)
    }

    // MARK: Claims

    func testWrongIssuerIsRefused() async throws {
        let idp = try await TestExternalIssuer()
        let issuer = try await idp.load()
        for wrong in [TestExternalIssuer.issuer + "/", "https://evil.example.com/realms/ah", "ah"] {
            var claims = TestExternalIssuer.claims(now: now)
            claims["iss"] = .string(wrong)
            await assertRefused(issuer, try await idp.sign(claims), .wrongIssuer)
        }
        var claims = TestExternalIssuer.claims(now: now)
        claims["iss"] = nil
        await assertRefused(issuer, try await idp.sign(claims), .wrongIssuer)
    }

    func testWrongAudienceIsRefused() async throws {
        let idp = try await TestExternalIssuer()
        let issuer = try await idp.load()
        let expected = UserTokenError.wrongAudience(expected: TestExternalIssuer.audience)
        for audience: ClaimValue? in [.string("grafana"), .strings(["grafana", "ah"]), .strings([]), nil] {
            var claims = TestExternalIssuer.claims(now: now)
            claims["aud"] = audience
            await assertRefused(issuer, try await idp.sign(claims), expected)
        }
    }

    func testLifetimeChecksUseTheLeeway() async throws {
        let idp = try await TestExternalIssuer()
        let issuer = try await idp.load()
        let token = try await idp.sign(TestExternalIssuer.claims(now: now))
        _ = try await issuer.verify(token, now: now.addingTimeInterval(600 + 29))
        await assertRefused(issuer, token, now: now.addingTimeInterval(600 + 31), .expired)

        var future = TestExternalIssuer.claims(now: now)
        future["nbf"] = .number(now.timeIntervalSince1970 + 120)
        await assertRefused(issuer, try await idp.sign(future), .notYetValid)
        future["nbf"] = .number(now.timeIntervalSince1970 + 20)  // within the leeway
        _ = try await issuer.verify(try await idp.sign(future), now: now)

        var issuedLater = TestExternalIssuer.claims(now: now)
        issuedLater["iat"] = .number(now.timeIntervalSince1970 + 120)
        await assertRefused(issuer, try await idp.sign(issuedLater), .notYetValid)

        var noExpiry = TestExternalIssuer.claims(now: now)
        noExpiry["exp"] = nil
        await assertRefused(issuer, try await idp.sign(noExpiry), .missingExpiry)
        noExpiry["exp"] = .string("tomorrow")
        await assertRefused(issuer, try await idp.sign(noExpiry), .malformed)
    }

    func testUnknownRoleIsRefused() async throws {
        let idp = try await TestExternalIssuer()
        let issuer = try await idp.load()
        var claims = TestExternalIssuer.claims(now: now)
        claims["role"] = .string("wizard")
        await assertRefused(issuer, try await idp.sign(claims), .unknownRole("wizard"))
        claims["role"] = .string("Admin")
        await assertRefused(issuer, try await idp.sign(claims), .unknownRole("Admin"))
        claims["role"] = .strings(["admin"])
        await assertRefused(issuer, try await idp.sign(claims), .unknownRole("(not a string)"))
    }

    func testSubjectMustBeAShortPrintableString() async throws {
        let idp = try await TestExternalIssuer()
        let issuer = try await idp.load()
        var claims = TestExternalIssuer.claims(now: now)
        claims["sub"] = .string(String(repeating: "a", count: 256))
        _ = try await issuer.verify(try await idp.sign(claims), now: now)
        claims["sub"] = .string(String(repeating: "a", count: 257))
        await assertRefused(issuer, try await idp.sign(claims), .invalidSubject("longer than 256 bytes"))
        claims["sub"] = .string("alice\nadmin")
        await assertRefused(issuer, try await idp.sign(claims), .invalidSubject("contains control characters"))
        for subject: ClaimValue? in [.string(""), .number(42), nil] {
            claims["sub"] = subject
            await assertRefused(issuer, try await idp.sign(claims), .missingSubject)
        }
    }

    func testGarbageAndOversizeTokensAreMalformed() async throws {
        let idp = try await TestExternalIssuer()
        let issuer = try await idp.load()
        for garbage in ["", "not-a-jwt", "a.b.c", "a.b", "a.b.c.d", "!!.??.##"] {
            await assertRefused(issuer, garbage, .malformed)
        }
        var claims = TestExternalIssuer.claims(now: now)
        claims["padding"] = .string(String(repeating: "x", count: 9000))
        await assertRefused(issuer, try await idp.sign(claims), .malformed)
    }

    func testErrorDescriptionsNeverContainTheToken() async throws {
        let idp = try await TestExternalIssuer()
        let issuer = try await idp.load()
        var claims = TestExternalIssuer.claims(now: now)
        claims["role"] = .string("wizard")
        let token = try await idp.sign(claims)
        do {
            _ = try await issuer.verify(token, now: now)
            XCTFail("accepted")
        } catch {
            for part in token.split(separator: ".") {
                XCTAssertFalse("\(error)".contains(part))
            }
        }
    }

    // MARK: Loading the JWKS

    func testJWKSRefusals() async throws {
        let idp = try await TestExternalIssuer()
        let rsa = try TestExternalIssuer.rsaJWK(idp.rsa.publicKey, kid: "r")
        let ec = try TestExternalIssuer.ecJWK(idp.ec.publicKey, kid: "e")
        func with(_ base: [String: Any], _ changes: [String: Any?]) -> [String: Any] {
            var copy = base
            for (key, value) in changes { copy[key] = value }
            return copy
        }
        let shortModulus = base64URL(Data([0xC1] + Array(repeating: 0x55, count: 127)))
        let cases: [(String, [[String: Any]], String)] = [
            ("hmac", [["kty": "oct", "kid": "h", "k": "c2VjcmV0"]], "secret key material"),
            ("hmac without k", [["kty": "oct", "kid": "h", "alg": "HS256"]], "alg 'HS256'"),
            ("oct", [["kty": "oct", "kid": "h"]], "symmetric (oct) key"),
            ("none", [with(rsa, ["alg": "none"])], "alg 'none'"),
            ("PS256", [with(rsa, ["alg": "PS256"])], "alg 'PS256'"),
            ("EdDSA", [["kty": "OKP", "crv": "Ed25519", "kid": "o", "x": "AAAA"]], "OKP (EdDSA)"),
            ("EdDSA alg", [["kty": "OKP", "crv": "Ed25519", "kid": "o", "x": "AAAA", "alg": "EdDSA"]], "alg 'EdDSA'"),
            ("P-384", [with(ec, ["crv": "P-384", "alg": nil])], "curve 'P-384'"),
            ("RSA as ES256", [with(rsa, ["alg": "ES256"])], "RSA key with alg 'ES256'"),
            ("EC as RS256", [with(ec, ["alg": "RS256"])], "P-256 key with alg 'RS256'"),
            ("private RSA", [with(rsa, ["d": "AQAB"])], "private or secret key material"),
            ("encryption key", [with(rsa, ["use": "enc"])], "use 'enc'"),
            ("short RSA", [with(rsa, ["n": shortModulus])], "1024-bit RSA key"),
            ("RSA without n", [with(rsa, ["n": nil])], "without valid n and e"),
            ("EC without y", [with(ec, ["y": nil])], "without x and y"),
            ("EC off the curve", [with(ec, ["y": ec["x"]!])], "not a valid P-256 public key"),
            ("two keys, one without kid", [rsa, with(ec, ["kid": nil])], "key 2 has no kid"),
            ("duplicate kid", [rsa, with(ec, ["kid": "r"])], "key 2 repeats kid 'r'"),
            ("empty kid", [with(rsa, ["kid": ""])], "empty or non-string kid"),
            ("no kty", [with(rsa, ["kty": nil])], "has no kty"),
            ("no keys", [], "has no keys"),
        ]
        for (name, keys, expected) in cases {
            let path = try idp.writeJWKS(keys, name: "\(name).json")
            await assertLoadFails(idp, path: path, containing: expected, name)
        }
        let notJSON = idp.directory.file("garbage.json").path
        try Data("{\"keys\": [".utf8).write(to: URL(fileURLWithPath: notJSON))
        await assertLoadFails(idp, path: notJSON, containing: "is not a JSON object", "garbage")
        await assertLoadFails(idp, path: idp.directory.file("absent.json").path, containing: "does not exist", "absent")
        let huge = idp.directory.file("huge.json").path
        try Data(repeating: 0x20, count: ExternalKeySet.maxFileBytes + 1).write(to: URL(fileURLWithPath: huge))
        await assertLoadFails(idp, path: huge, containing: "the limit is", "huge")
    }

    func testJWKSWithoutAlgInfersItFromTheKeyType() async throws {
        let idp = try await TestExternalIssuer()
        try idp.writeJWKS([TestExternalIssuer.rsaJWK(idp.rsa.publicKey, kid: TestExternalIssuer.rsaKID, alg: nil),
                           TestExternalIssuer.ecJWK(idp.ec.publicKey, kid: TestExternalIssuer.ecKID, alg: nil)])
        let issuer = try await idp.load()
        _ = try await issuer.verify(try await idp.sign(TestExternalIssuer.claims(now: now), kid: TestExternalIssuer.rsaKID), now: now)
        _ = try await issuer.verify(try await idp.sign(TestExternalIssuer.claims(now: now), kid: TestExternalIssuer.ecKID), now: now)
    }

    func testConfigurationIsValidated() async throws {
        let idp = try await TestExternalIssuer()
        var configuration = idp.configuration()
        configuration.issuer = "ah"
        await assertLoadFails(configuration, containing: "own issuer")
        configuration = idp.configuration()
        configuration.audience = ""
        await assertLoadFails(configuration, containing: "audience must not be empty")
        configuration = idp.configuration(roleClaim: "")
        await assertLoadFails(configuration, containing: "role claim")
    }

    func testReloadPicksUpRotatedKeysAndKeepsOldOnesOnFailure() async throws {
        let idp = try await TestExternalIssuer()
        let issuer = try await idp.load()
        let rotated = ES256PrivateKey()
        await idp.signers.add(ecdsa: rotated, kid: "ec-2")
        let newToken = try await idp.sign(TestExternalIssuer.claims(now: now), kid: "ec-2")
        await assertRefused(issuer, newToken, .unknownSigningKey(kid: "ec-2"))

        try idp.writeJWKS([TestExternalIssuer.ecJWK(rotated.publicKey, kid: "ec-2")])
        try await issuer.reload()
        XCTAssertEqual(issuer.keyCount, 1)
        _ = try await issuer.verify(newToken, now: now)

        try Data("not json".utf8).write(to: URL(fileURLWithPath: idp.jwksPath))
        do {
            try await issuer.reload()
            XCTFail("reload accepted a broken file")
        } catch {}
        _ = try await issuer.verify(newToken, now: now)
    }

    // MARK: Helpers

    private func assertRefused(_ issuer: ExternalTokenIssuer, _ token: String, now: Date? = nil, _ expected: UserTokenError,
                               file: StaticString = #filePath, line: UInt = #line) async {
        do {
            let claims = try await issuer.verify(token, now: now ?? self.now)
            XCTFail("accepted a token for \(claims.subject)", file: file, line: line)
        } catch let error as UserTokenError {
            XCTAssertEqual(error, expected, file: file, line: line)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }

    private func assertLoadFails(_ idp: TestExternalIssuer, path: String, containing expected: String, _ name: String,
                                 file: StaticString = #filePath, line: UInt = #line) async {
        var configuration = idp.configuration()
        configuration.jwksFile = path
        await assertLoadFails(configuration, containing: expected, name, file: file, line: line)
    }

    private func assertLoadFails(_ configuration: ExternalIssuerConfiguration, containing expected: String, _ name: String = "",
                                 file: StaticString = #filePath, line: UInt = #line) async {
        do {
            _ = try await ExternalTokenIssuer.load(configuration)
            XCTFail("\(name): loaded", file: file, line: line)
        } catch let error as UserTokenError {
            guard case .issuerConfiguration(let message) = error else {
                return XCTFail("\(name): \(error)", file: file, line: line)
            }
            XCTAssertTrue(message.contains(expected), "\(name): '\(message)' lacks '\(expected)'", file: file, line: line)
            if expected != "own issuer", !configuration.jwksFile.isEmpty, message.contains("JWKS") {
                XCTAssertTrue(message.contains(configuration.jwksFile), "\(name): '\(message)' does not name the file",
                              file: file, line: line)
            }
        } catch {
            XCTFail("\(name): unexpected \(error)", file: file, line: line)
        }
    }
}
