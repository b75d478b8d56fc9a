import AHSPIFFE
import XCTest

final class PeerPolicyTests: XCTestCase {
    private func id(_ s: String) throws -> SPIFFEID { try SPIFFEID(parsing: s) }

    func testExact() throws {
        let policy = PeerPolicy.exact(try id("spiffe://td/ah/serve"))
        XCTAssertTrue(policy.allows(try id("spiffe://td/ah/serve")))
        XCTAssertFalse(policy.allows(try id("spiffe://td/ah/serve/x")))
        XCTAssertFalse(policy.allows(try id("spiffe://td/ah")))
        XCTAssertFalse(policy.allows(try id("spiffe://other/ah/serve")))
        XCTAssertFalse(policy.allows(try id("spiffe://td/ah/Serve")))
    }

    func testPrefixStopsAtASegmentBoundary() throws {
        let policy = PeerPolicy.prefix(trustDomain: "td", pathPrefix: "/ah/agent")
        XCTAssertTrue(policy.allows(try id("spiffe://td/ah/agent")))
        XCTAssertTrue(policy.allows(try id("spiffe://td/ah/agent/n1")))
        XCTAssertTrue(policy.allows(try id("spiffe://td/ah/agent/n1/deeper")))
        XCTAssertFalse(policy.allows(try id("spiffe://td/ah/agentx")))
        XCTAssertFalse(policy.allows(try id("spiffe://td/ah/agentx/n1")))
        XCTAssertFalse(policy.allows(try id("spiffe://td/ah")))
        XCTAssertFalse(policy.allows(try id("spiffe://td/ah/serve")))
        XCTAssertFalse(policy.allows(try id("spiffe://td")))
    }

    func testPrefixRequiresSameTrustDomain() throws {
        let policy = PeerPolicy.prefix(trustDomain: "td", pathPrefix: "/ah/agent")
        XCTAssertFalse(policy.allows(try id("spiffe://other/ah/agent/n1")))
        XCTAssertFalse(policy.allows(try id("spiffe://td.evil/ah/agent/n1")))
        XCTAssertFalse(policy.allows(try id("spiffe://t/ah/agent/n1")))
    }

    func testEmptyPrefixMatchesWholeTrustDomain() throws {
        let policy = PeerPolicy.prefix(trustDomain: "td", pathPrefix: "")
        XCTAssertTrue(policy.allows(try id("spiffe://td")))
        XCTAssertTrue(policy.allows(try id("spiffe://td/anything/at/all")))
        XCTAssertFalse(policy.allows(try id("spiffe://td2/anything")))
    }

    func testHandBuiltPrefixWithTrailingSlashKeepsTheBoundary() throws {
        let policy = PeerPolicy.prefix(trustDomain: "td", pathPrefix: "/ah/agent/")
        XCTAssertTrue(policy.allows(try id("spiffe://td/ah/agent/n1")))
        XCTAssertFalse(policy.allows(try id("spiffe://td/ah/agentx")))
        XCTAssertEqual(policy.description, "spiffe://td/ah/agent/*")
    }

    func testAnyOf() throws {
        let policy = PeerPolicy.anyOf([
            .exact(try id("spiffe://td/ah/serve")),
            .prefix(trustDomain: "other", pathPrefix: "/ah/agent"),
        ])
        XCTAssertTrue(policy.allows(try id("spiffe://td/ah/serve")))
        XCTAssertTrue(policy.allows(try id("spiffe://other/ah/agent/n")))
        XCTAssertFalse(policy.allows(try id("spiffe://td/ah/agent/n")))
        XCTAssertFalse(policy.allows(try id("spiffe://other/ah/serve")))
        XCTAssertFalse(PeerPolicy.anyOf([]).allows(try id("spiffe://td/ah/serve")), "empty union allows nobody")
    }

    func testParsing() throws {
        XCTAssertEqual(try PeerPolicy(parsing: "spiffe://td/ah/serve"), .exact(try id("spiffe://td/ah/serve")))
        XCTAssertEqual(try PeerPolicy(parsing: "spiffe://td/ah/agent/*"), .prefix(trustDomain: "td", pathPrefix: "/ah/agent"))
        XCTAssertEqual(try PeerPolicy(parsing: "spiffe://td/*"), .prefix(trustDomain: "td", pathPrefix: ""))
        XCTAssertEqual(try PeerPolicy(parsing: "spiffe://td"), .exact(try id("spiffe://td")))
    }

    func testParsingRejectsBadPolicies() {
        let cases: [(String, SPIFFEIDError.Rule)] = [
            ("spiffe://td/ah/*/x", .policyWildcard),
            ("spiffe://td/ah*", .policyWildcard),
            ("spiffe://td/ah/*/*", .policyWildcard),
            ("spiffe://*", .missingTrustDomain),
            ("spiffe:///*", .missingTrustDomain),
            ("spiffe://TD/*", .trustDomainUppercase),
            ("spiffe://td/a//*", .emptySegment),
            ("https://td/*", .scheme),
            ("*", .policyWildcard),
            ("", .empty),
        ]
        for (input, rule) in cases {
            XCTAssertThrowsError(try PeerPolicy(parsing: input), input) { error in
                let e = error as? SPIFFEIDError
                XCTAssertEqual(e?.rule, rule, input)
                XCTAssertEqual(e?.input, input, "the error names the policy as written")
            }
        }
    }

    func testDescriptionRoundTrips() throws {
        for text in ["spiffe://td/ah/serve", "spiffe://td/ah/agent/*", "spiffe://td/*"] {
            let policy = try PeerPolicy(parsing: text)
            XCTAssertEqual(policy.description, text)
            XCTAssertEqual(try PeerPolicy(parsing: policy.description), policy)
        }
        let union = PeerPolicy.anyOf([try PeerPolicy(parsing: "spiffe://a/*"), try PeerPolicy(parsing: "spiffe://b/x")])
        XCTAssertEqual(union.description, "anyOf(spiffe://a/*, spiffe://b/x)")
    }

    func testCheckNamesPeerAndPolicy() throws {
        let policy = try PeerPolicy(parsing: "spiffe://td/ah/agent/*")
        XCTAssertNil(policy.check(try id("spiffe://td/ah/agent/n1")))
        let violation = try XCTUnwrap(policy.check(try id("spiffe://x/y")))
        XCTAssertEqual(violation.description, "peer spiffe://x/y is not allowed by policy spiffe://td/ah/agent/*")
        XCTAssertEqual(violation.peer, try id("spiffe://x/y"))
        XCTAssertEqual(violation.policy, policy)
    }
}
