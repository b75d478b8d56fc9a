import AHSPIFFE
import XCTest

/// Every rule of the SPIFFE ID spec, each with inputs that must pass and inputs that must fail
/// with that rule (not merely "some error"), so a reordering of checks or a loosened rule shows.
final class SPIFFEIDParsingTests: XCTestCase {
    private func assertRejects(_ input: String, _ rule: SPIFFEIDError.Rule, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let id = try SPIFFEID(parsing: input)
            XCTFail("accepted \(input) as \(id)", file: file, line: line)
        } catch {
            XCTAssertEqual(error.rule, rule, "input \(input)", file: file, line: line)
            XCTAssertEqual(error.input, input, file: file, line: line)
        }
    }

    func testValidIDsKeepTheirParts() throws {
        let cases: [(String, String, String)] = [
            ("spiffe://example.org", "example.org", ""),
            ("spiffe://example.org/ah/serve", "example.org", "/ah/serve"),
            ("spiffe://td/ah/agent/node-1", "td", "/ah/agent/node-1"),
            ("spiffe://a_b-c.9/Mixed.Case_path-9/x", "a_b-c.9", "/Mixed.Case_path-9/x"),
            ("spiffe://td/...", "td", "/..."),
            ("spiffe://td/.a/a./..b", "td", "/.a/a./..b"),
        ]
        for (input, td, path) in cases {
            let id = try SPIFFEID(parsing: input)
            XCTAssertEqual(id.trustDomain, td, input)
            XCTAssertEqual(id.path, path, input)
            XCTAssertEqual(id.description, input, "round trip")
        }
    }

    func testEmpty() { assertRejects("", .empty) }

    func testSchemeMustBeExactlyLowerCaseSpiffe() {
        assertRejects("SPIFFE://example.org/a", .scheme)
        assertRejects("Spiffe://example.org/a", .scheme)
        assertRejects("https://example.org/a", .scheme)
        assertRejects("spiffe:/example.org/a", .scheme)
        assertRejects("spiffe:example.org", .scheme)
        assertRejects("example.org/a", .scheme)
        assertRejects(" spiffe://example.org", .scheme)
    }

    func testTrustDomainMustBeNonEmpty() {
        assertRejects("spiffe://", .missingTrustDomain)
        assertRejects("spiffe:///path", .missingTrustDomain)
    }

    func testTrustDomainCharacters() {
        assertRejects("spiffe://Example.org/a", .trustDomainUppercase)
        assertRejects("spiffe://EXAMPLE", .trustDomainUppercase)
        assertRejects("spiffe://example.org:8443/a", .trustDomainPort)
        assertRejects("spiffe://user@example.org/a", .trustDomainUserinfo)
        assertRejects("spiffe://user:pw@example.org/a", .trustDomainPort)
        assertRejects("spiffe://exa mple.org", .trustDomainCharacter)
        assertRejects("spiffe://exämple.org", .trustDomainCharacter)
        assertRejects("spiffe://ex+ample", .trustDomainCharacter)
        assertRejects("spiffe://[::1]/a", .trustDomainCharacter)
    }

    func testTrustDomainLengthBoundary() throws {
        let td255 = String(repeating: "a", count: 255)
        XCTAssertEqual(try SPIFFEID(parsing: "spiffe://\(td255)/x").trustDomain, td255)
        assertRejects("spiffe://\(td255)a/x", .trustDomainTooLong)
    }

    func testPathSegmentsRules() {
        assertRejects("spiffe://td/", .trailingSlash)
        assertRejects("spiffe://td/a/", .trailingSlash)
        assertRejects("spiffe://td//", .trailingSlash)
        assertRejects("spiffe://td//a", .emptySegment)
        assertRejects("spiffe://td/a//b", .emptySegment)
        assertRejects("spiffe://td/.", .dotSegment)
        assertRejects("spiffe://td/..", .dotSegment)
        assertRejects("spiffe://td/a/./b", .dotSegment)
        assertRejects("spiffe://td/a/../b", .dotSegment)
        assertRejects("spiffe://td/a b", .segmentCharacter)
        assertRejects("spiffe://td/a*", .segmentCharacter)
        assertRejects("spiffe://td/a:b", .segmentCharacter)
        assertRejects("spiffe://td/a+b", .segmentCharacter)
        assertRejects("spiffe://td/caf\u{e9}", .segmentCharacter)
        assertRejects("spiffe://td/a\\b", .segmentCharacter)
    }

    func testNoQueryFragmentOrPercentEncoding() {
        assertRejects("spiffe://td/a?b=c", .query)
        assertRejects("spiffe://td?x", .query)
        assertRejects("spiffe://td/a#frag", .fragment)
        assertRejects("spiffe://td#x", .fragment)
        assertRejects("spiffe://td/a%20b", .percentEncoding)
        assertRejects("spiffe://t%64/a", .percentEncoding)
    }

    func testTotalLengthBoundaryIs2048Bytes() throws {
        let head = "spiffe://td/"
        let exact = head + String(repeating: "a", count: 2048 - head.utf8.count)
        XCTAssertEqual(exact.utf8.count, 2048)
        XCTAssertEqual(try SPIFFEID(parsing: exact).description, exact)
        let over = exact + "a"
        XCTAssertEqual(over.utf8.count, 2049)
        assertRejects(over, .tooLong)
        // The limit is in bytes: 2049 bytes of valid-looking segments split across many segments.
        let manySegments = head + Array(repeating: "ab", count: 679).joined(separator: "/")
        XCTAssertEqual(manySegments.utf8.count, 2048)
        XCTAssertNoThrow(try SPIFFEID(parsing: manySegments))
        assertRejects(manySegments + "c", .tooLong)
    }

    func testErrorDescriptionNamesInputAndRule() {
        do {
            _ = try SPIFFEID(parsing: "spiffe://td/a//b")
            XCTFail("accepted")
        } catch {
            XCTAssertEqual(
                error.description,
                "invalid SPIFFE ID \"spiffe://td/a//b\": path segments must not be empty ('//')"
            )
        }
    }

    func testErrorDescriptionOfHugeInputIsShort() {
        let huge = "spiffe://td/" + String(repeating: "x", count: 100_000)
        do {
            _ = try SPIFFEID(parsing: huge)
            XCTFail("accepted")
        } catch {
            XCTAssertLessThan(error.description.utf8.count, 300)
            XCTAssertTrue(error.description.contains("100012 bytes"), error.description)
        }
    }
}
