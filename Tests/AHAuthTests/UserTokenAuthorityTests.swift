@testable import AHAuth
import AHTestSupport
import Foundation
import XCTest

final class UserTokenAuthorityTests: XCTestCase {
    private let now = Date(timeIntervalSince1970: 1_800_000_000)

    func testMintedTokenVerifiesWithItsClaims() async throws {
        let authority = await UserTokenAuthority.ephemeral()
        let issued = try await authority.issue(subject: "alice", role: .admin, ttl: 3600, now: now)
        let claims = try await authority.verify(issued.token, now: now.addingTimeInterval(10))
        XCTAssertEqual(claims, issued.claims)
        XCTAssertEqual(claims.subject, "alice")
        XCTAssertEqual(claims.role, .admin)
        XCTAssertEqual(claims.audience, ["ah"])
        XCTAssertEqual(claims.issuedAt, now)
        XCTAssertEqual(claims.expiresAt, now.addingTimeInterval(3600))
        XCTAssertEqual(claims.tokenID?.count, 32)
        let other = try await authority.issue(subject: "alice", role: .admin, ttl: 3600, now: now)
        XCTAssertNotEqual(other.claims.tokenID, claims.tokenID, "jti is random per token")
    }

    func testTokenCarriesTheDocumentedClaims() async throws {
        let authority = await UserTokenAuthority.ephemeral()
        let token = try await authority.mint(subject: "bob", role: .operator, ttl: 60, now: now)
        let segments = token.split(separator: ".")
        XCTAssertEqual(segments.count, 3)
        let header = try decodeSegment(segments[0])
        XCTAssertEqual(header["alg"] as? String, "ES256")
        let body = try decodeSegment(segments[1])
        XCTAssertEqual(Set(body.keys), ["sub", "role", "aud", "iss", "iat", "exp", "jti"])
        XCTAssertEqual(body["sub"] as? String, "bob")
        XCTAssertEqual(body["role"] as? String, "operator")
        XCTAssertEqual(body["iss"] as? String, "ah")
        XCTAssertEqual((body["exp"] as? NSNumber)?.doubleValue, now.timeIntervalSince1970 + 60)
    }

    func testExpiredTokenIsRefusedAfterTheLeeway() async throws {
        let authority = await UserTokenAuthority.ephemeral()
        let token = try await authority.mint(subject: "alice", role: .viewer, ttl: 60, now: now)
        // Within the leeway a slightly fast clock still accepts it...
        _ = try await authority.verify(token, now: now.addingTimeInterval(60 + UserTokenAuthority.leeway - 1))
        // ...beyond it, never.
        await assertRefused(authority, token, now: now.addingTimeInterval(60 + UserTokenAuthority.leeway + 1), .expired)
        XCTAssertLessThanOrEqual(UserTokenAuthority.leeway, 30)
    }

    func testTokenFromTheFutureIsRefused() async throws {
        let authority = await UserTokenAuthority.ephemeral()
        let token = try await authority.mint(subject: "alice", role: .viewer, ttl: 3600, now: now.addingTimeInterval(600))
        await assertRefused(authority, token, now: now, .notYetValid)
    }

    func testTamperedTokenIsRefused() async throws {
        let authority = await UserTokenAuthority.ephemeral()
        let token = try await authority.mint(subject: "alice", role: .viewer, ttl: 600, now: now)
        var parts = token.split(separator: ".").map(String.init)
        // Promote ourselves to admin without re-signing.
        var body = try decodeSegment(Substring(parts[1]))
        body["role"] = "admin"
        parts[1] = base64URL(try JSONSerialization.data(withJSONObject: body))
        await assertRefused(authority, parts.joined(separator: "."), now: now, .badSignature)
        // Flip one signature character.
        var signature = Array(token.split(separator: ".")[2])
        signature[5] = signature[5] == "A" ? "B" : "A"
        let flipped = token.split(separator: ".")[0...1].joined(separator: ".") + "." + String(signature)
        await assertRefused(authority, flipped, now: now, .badSignature)
        // A token whose algorithm says "none" gets no special treatment.
        let unsigned = base64URL(Data(#"{"alg":"none","typ":"JWT"}"#.utf8)) + "." + parts[1] + "."
        do {
            _ = try await authority.verify(unsigned, now: now)
            XCTFail("an unsigned token was accepted")
        } catch {}
    }

    func testTokenSignedByAnotherKeyIsRefused() async throws {
        let ours = await UserTokenAuthority.ephemeral()
        let theirs = await UserTokenAuthority.ephemeral()
        let token = try await theirs.mint(subject: "mallory", role: .admin, ttl: 600, now: now)
        await assertRefused(ours, token, now: now, .badSignature)
    }

    func testWrongAudienceIsRefused() async throws {
        let authority = await UserTokenAuthority.ephemeral()
        let token = try await authority.mint(subject: "alice", role: .viewer, ttl: 600, audience: "grafana", now: now)
        await assertRefused(authority, token, now: now, .wrongAudience(expected: "ah"))
        let claims = try await authority.verify(token, audience: "grafana", now: now)
        XCTAssertEqual(claims.subject, "alice")
    }

    func testGarbageIsMalformed() async throws {
        let authority = await UserTokenAuthority.ephemeral()
        await assertRefused(authority, "not-a-jwt", now: now, .malformed)
        await assertRefused(authority, "", now: now, .malformed)
    }

    func testUnknownRoleMissingSubjectAndForeignIssuerAreRefused() async throws {
        let authority = await UserTokenAuthority.ephemeral()
        func payload(sub: String? = "alice", role: String? = "viewer", iss: String = "ah") -> UserTokenPayload {
            UserTokenPayload(subject: sub, role: role, audience: ["ah"], issuer: iss, issuedAt: now,
                             expiresAt: now.addingTimeInterval(600), tokenID: "x")
        }
        _ = try await authority.verify(try await authority.sign(payload()), now: now)
        await assertRefused(authority, try await authority.sign(payload(role: "wizard")), now: now, .unknownRole("wizard"))
        await assertRefused(authority, try await authority.sign(payload(role: nil)), now: now, .unknownRole(""))
        await assertRefused(authority, try await authority.sign(payload(sub: nil)), now: now, .missingSubject)
        await assertRefused(authority, try await authority.sign(payload(sub: "")), now: now, .missingSubject)
        await assertRefused(authority, try await authority.sign(payload(iss: "someone-else")), now: now, .wrongIssuer)
        let noExpiry = UserTokenPayload(subject: "alice", role: "viewer", audience: ["ah"], issuer: "ah", issuedAt: now,
                                        expiresAt: nil, tokenID: nil)
        await assertRefused(authority, try await authority.sign(noExpiry), now: now, .missingExpiry)
    }

    func testMintRefusesEmptySubjectAndNonPositiveLifetime() async throws {
        let authority = await UserTokenAuthority.ephemeral()
        for (subject, ttl) in [("", 60.0), ("alice", 0), ("alice", -5)] {
            do {
                _ = try await authority.mint(subject: subject, role: .viewer, ttl: ttl)
                XCTFail("minted for subject '\(subject)' ttl \(ttl)")
            } catch let error as UserTokenError {
                guard case .invalidRequest = error else { return XCTFail("\(error)") }
            }
        }
    }

    func testRolesAreOrdered() {
        XCTAssertTrue(Role.admin.allows(.operator))
        XCTAssertTrue(Role.admin.allows(.viewer))
        XCTAssertTrue(Role.operator.allows(.viewer))
        XCTAssertTrue(Role.viewer.allows(.viewer))
        XCTAssertFalse(Role.viewer.allows(.operator))
        XCTAssertFalse(Role.operator.allows(.admin))
        XCTAssertEqual(Role.allCases.sorted(), [.viewer, .operator, .admin])
    }

    func testErrorDescriptionsNeverContainTheToken() async throws {
        let authority = await UserTokenAuthority.ephemeral()
        let other = await UserTokenAuthority.ephemeral()
        let token = try await other.mint(subject: "alice", role: .viewer, ttl: 600, now: now)
        do {
            _ = try await authority.verify(token, now: now)
            XCTFail("accepted")
        } catch {
            XCTAssertFalse("\(error)".contains(token.split(separator: ".")[2]))
            XCTAssertFalse("\(error)".contains(token.split(separator: ".")[1]))
        }
    }

    // MARK: Helpers

    private func assertRefused(_ authority: UserTokenAuthority, _ token: String, now: Date, _ expected: UserTokenError,
                               file: StaticString = #filePath, line: UInt = #line) async {
        do {
            let claims = try await authority.verify(token, now: now)
            XCTFail("accepted a token for \(claims.subject)", file: file, line: line)
        } catch let error as UserTokenError {
            XCTAssertEqual(error, expected, file: file, line: line)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }
}

func decodeSegment(_ segment: Substring) throws -> [String: Any] {
    var text = segment.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while text.count % 4 != 0 { text += "=" }
    guard let data = Data(base64Encoded: text),
          let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw RawSocketError("segment is not base64url JSON")
    }
    return object
}

func base64URL(_ data: Data) -> String {
    data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}
