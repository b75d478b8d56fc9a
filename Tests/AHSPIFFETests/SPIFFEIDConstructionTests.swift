import AHSPIFFE
import Foundation
import XCTest

/// The part-wise initialiser, helpers, segments and Codable form.
final class SPIFFEIDConstructionTests: XCTestCase {
    func testInitFromPartsValidatesEachPart() throws {
        XCTAssertEqual(try SPIFFEID(trustDomain: "example.org", path: "/a/b").description, "spiffe://example.org/a/b")
        XCTAssertEqual(try SPIFFEID(trustDomain: "example.org", path: "").description, "spiffe://example.org")
        XCTAssertThrowsError(try SPIFFEID(trustDomain: "Example.org", path: "/a")) { error in
            XCTAssertEqual((error as? SPIFFEIDError)?.rule, .trustDomainUppercase)
        }
        XCTAssertThrowsError(try SPIFFEID(trustDomain: "", path: "/a")) { error in
            XCTAssertEqual((error as? SPIFFEIDError)?.rule, .missingTrustDomain)
        }
        XCTAssertThrowsError(try SPIFFEID(trustDomain: "td", path: "a")) { error in
            XCTAssertEqual((error as? SPIFFEIDError)?.rule, .pathStart)
        }
        XCTAssertThrowsError(try SPIFFEID(trustDomain: "td", path: "/a/")) { error in
            XCTAssertEqual((error as? SPIFFEIDError)?.rule, .trailingSlash)
        }
        XCTAssertThrowsError(try SPIFFEID(trustDomain: "td", path: "/a?b")) { error in
            XCTAssertEqual((error as? SPIFFEIDError)?.rule, .query)
        }
        // The part-wise path cannot smuggle a second "spiffe://" or an authority into the ID.
        XCTAssertThrowsError(try SPIFFEID(trustDomain: "td", path: "/a:b")) { error in
            XCTAssertEqual((error as? SPIFFEIDError)?.rule, .segmentCharacter)
        }
    }

    func testInitFromPartsEnforcesTotalLength() throws {
        let prefix = "spiffe://td/"
        let segment2036 = String(repeating: "p", count: 2048 - prefix.utf8.count)
        XCTAssertNoThrow(try SPIFFEID(trustDomain: "td", path: "/" + segment2036))
        XCTAssertThrowsError(try SPIFFEID(trustDomain: "td", path: "/" + segment2036 + "p")) { error in
            XCTAssertEqual((error as? SPIFFEIDError)?.rule, .tooLong)
        }
    }

    func testPartsAndParsingAgree() throws {
        XCTAssertEqual(try SPIFFEID(parsing: "spiffe://td/x/y"), try SPIFFEID(trustDomain: "td", path: "/x/y"))
        XCTAssertNotEqual(try SPIFFEID(parsing: "spiffe://td/x/y"), try SPIFFEID(parsing: "spiffe://td/x/Y"))
        XCTAssertNotEqual(try SPIFFEID(parsing: "spiffe://td/x"), try SPIFFEID(parsing: "spiffe://tdx"))
    }

    func testSegments() throws {
        XCTAssertEqual(try SPIFFEID(parsing: "spiffe://td/ah/agent/n1").segments(), ["ah", "agent", "n1"])
        XCTAssertEqual(try SPIFFEID(parsing: "spiffe://td").segments(), [])
        XCTAssertEqual(try SPIFFEID(parsing: "spiffe://td/x").segments(), ["x"])
    }

    func testAgentAndAccessPointHelpers() throws {
        XCTAssertEqual(try SPIFFEID.agent(trustDomain: "example.org", name: "build-7").description,
                       "spiffe://example.org/ah/agent/build-7")
        XCTAssertEqual(try SPIFFEID.accessPoint(trustDomain: "example.org").description,
                       "spiffe://example.org/ah/serve")
        // A name is exactly one segment.
        for bad in ["", "a/b", ".", "..", "a b", "a?", "n%41"] {
            XCTAssertThrowsError(try SPIFFEID.agent(trustDomain: "example.org", name: bad), "name \(bad)")
        }
        XCTAssertThrowsError(try SPIFFEID.accessPoint(trustDomain: "Bad.TD"))
    }

    func testIsValidPathSegment() {
        for good in ["a", "A", "0", "node-1", "a_b", "a.b", "...", ".x", "x."] {
            XCTAssertTrue(SPIFFEID.isValidPathSegment(good), good)
        }
        for bad in ["", ".", "..", "a/b", "a b", "ä", "a%20", "a?", "a#", "*", "a:b"] {
            XCTAssertFalse(SPIFFEID.isValidPathSegment(bad), bad)
        }
    }

    func testCodableIsTheURIString() throws {
        let id = try SPIFFEID(parsing: "spiffe://example.org/ah/agent/x")
        let data = try JSONEncoder().encode([id])
        XCTAssertEqual(String(decoding: data, as: UTF8.self), #"["spiffe:\/\/example.org\/ah\/agent\/x"]"#)
        XCTAssertEqual(try JSONDecoder().decode([SPIFFEID].self, from: data), [id])
        XCTAssertThrowsError(try JSONDecoder().decode([SPIFFEID].self, from: Data(#"["spiffe://Bad/x"]"#.utf8))) { error in
            guard case DecodingError.dataCorrupted(let context)? = error as? DecodingError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertTrue(context.debugDescription.contains("spiffe://Bad/x"), context.debugDescription)
        }
    }

    func testHashableDistinguishesIDs() throws {
        let set: Set<SPIFFEID> = [
            try SPIFFEID(parsing: "spiffe://td/a"),
            try SPIFFEID(parsing: "spiffe://td/a"),
            try SPIFFEID(parsing: "spiffe://td/b"),
        ]
        XCTAssertEqual(set.count, 2)
    }
}
