@testable import AHAuth
import AHTestSupport
import Foundation
import JWTKit
import XCTest

final class TokenVerifierChainTests: XCTestCase {
    private let now = Date(timeIntervalSince1970: 1_800_000_000)

    func testLocalTokensGoToTheLocalAuthority() async throws {
        let local = await UserTokenAuthority.ephemeral()
        let idp = try await TestExternalIssuer()
        let chain = TokenVerifierChain(local: local, external: try await idp.load())
        let token = try await local.mint(subject: "alice", role: .admin, ttl: 600, now: now)
        let claims = try await chain.verify(token, now: now)
        XCTAssertEqual(claims.subject, "alice")
        XCTAssertEqual(claims.role, .admin)
        // Still fully verified: another access point's token with iss "ah" is refused.
        let other = await UserTokenAuthority.ephemeral()
        await assertRefused(chain, try await other.mint(subject: "mallory", role: .admin, ttl: 600, now: now), .badSignature)
        await assertRefused(chain, token, now: now.addingTimeInterval(3600), .expired)
    }

    func testExternalTokensGoToTheExternalIssuer() async throws {
        let local = await UserTokenAuthority.ephemeral()
        let idp = try await TestExternalIssuer()
        let chain = TokenVerifierChain(local: local, external: try await idp.load())
        let token = try await idp.sign(TestExternalIssuer.claims(now: now, subject: "bob"))
        let claims = try await chain.verify(token, now: now)
        XCTAssertEqual(claims.subject, "bob")
        XCTAssertEqual(claims.role, .operator)
        // A forged external token is refused by the external verifier, not waved through.
        var claimsWithRole = TestExternalIssuer.claims(now: now)
        claimsWithRole["role"] = .string("admin")
        let impostor = JWTKeyCollection()
        await impostor.add(ecdsa: ES256PrivateKey(), kid: JWKIdentifier(string: TestExternalIssuer.ecKID))
        let forged = try await impostor.sign(ForgedClaims(claims: claimsWithRole), kid: JWKIdentifier(string: TestExternalIssuer.ecKID))
        await assertRefused(chain, forged, .badSignature)
    }

    func testLocalKeyCannotSignAsTheExternalIssuerAndViceVersa() async throws {
        let local = await UserTokenAuthority.ephemeral()
        let idp = try await TestExternalIssuer()
        let chain = TokenVerifierChain(local: local, external: try await idp.load())
        // Our own key signing a token claiming the external issuer: the external JWKS refuses it.
        let payload = UserTokenPayload(subject: "alice", role: "admin", audience: [TestExternalIssuer.audience],
                                       issuer: TestExternalIssuer.issuer, issuedAt: now,
                                       expiresAt: now.addingTimeInterval(600), tokenID: nil)
        do {
            _ = try await chain.verify(try await local.sign(payload), now: now)
            XCTFail("accepted")
        } catch {}
        // The external issuer's key signing a token claiming iss "ah": the local key refuses it.
        var claims = TestExternalIssuer.claims(now: now)
        claims["iss"] = .string("ah")
        claims["aud"] = .string("ah")
        claims["role"] = .string("admin")
        await assertRefused(chain, try await idp.sign(claims, kid: TestExternalIssuer.ecKID), .badSignature)
    }

    func testUnknownOrMissingIssuerIsRefused() async throws {
        let local = await UserTokenAuthority.ephemeral()
        let idp = try await TestExternalIssuer()
        let withExternal = TokenVerifierChain(local: local, external: try await idp.load())
        let localOnly = TokenVerifierChain(local: local)
        var claims = TestExternalIssuer.claims(now: now)
        claims["iss"] = .string("https://elsewhere.example.com")
        await assertRefused(withExternal, try await idp.sign(claims), .wrongIssuer)
        claims["iss"] = nil
        await assertRefused(withExternal, try await idp.sign(claims), .wrongIssuer)
        claims["iss"] = .number(1)
        await assertRefused(withExternal, try await idp.sign(claims), .wrongIssuer)
        // Without an external issuer configured, its tokens are just unknown.
        await assertRefused(localOnly, try await idp.sign(TestExternalIssuer.claims(now: now)), .wrongIssuer)
    }

    func testOversizeAndGarbageTokensAreMalformed() async throws {
        let local = await UserTokenAuthority.ephemeral()
        let chain = TokenVerifierChain(local: local)
        XCTAssertEqual(TokenVerifierChain.maxTokenBytes, 8 * 1024)
        // A local-looking token just over the limit, refused before any verification.
        let header = base64URL(Data(#"{"alg":"ES256","typ":"JWT"}"#.utf8))
        let body = base64URL(Data(#"{"iss":"ah","pad":"\#(String(repeating: "x", count: 9000))"}"#.utf8))
        await assertRefused(chain, header + "." + body + ".c2ln", .malformed)
        for garbage in ["", "x", "a.b", "a.b.c.d", "e30.!!!.sig", "e30.e30"] {
            await assertRefused(chain, garbage, .malformed)
        }
        // Well-formed JSON but not an object.
        await assertRefused(chain, header + "." + base64URL(Data("[1]".utf8)) + ".c2ln", .malformed)
    }

    private func assertRefused(_ chain: TokenVerifierChain, _ token: String, now: Date? = nil, _ expected: UserTokenError,
                               file: StaticString = #filePath, line: UInt = #line) async {
        do {
            let claims = try await chain.verify(token, now: now ?? self.now)
            XCTFail("accepted a token for \(claims.subject)", file: file, line: line)
        } catch let error as UserTokenError {
            XCTAssertEqual(error, expected, file: file, line: line)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }
}
