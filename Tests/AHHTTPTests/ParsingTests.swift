import AHAPI
import AHAuth
import AHHTTPClient
import Foundation
import XCTest

/// Pure parsing: server URLs and authorization headers.
final class ParsingTests: XCTestCase {
    func testServerURLs() throws {
        let plain = try APIServerURL(parsing: "http://127.0.0.1:8443")
        XCTAssertEqual([plain.host, "\(plain.port)", plain.basePath], ["127.0.0.1", "8443", ""])
        let prefixed = try APIServerURL(parsing: "http://ap.example.org/ah/")
        XCTAssertEqual([prefixed.host, "\(prefixed.port)", prefixed.basePath], ["ap.example.org", "80", "/ah"])
        let v6 = try APIServerURL(parsing: "http://[::1]:9000")
        XCTAssertEqual(v6.host, "::1")
        XCTAssertEqual(v6.authority, "[::1]:9000")
        for bad in ["ftp://x", "x:80", "http://", "http://u:p@x:1", "http://x:1/?q=1", "http://x:70000", ""] {
            XCTAssertThrowsError(try APIServerURL(parsing: bad), bad) { error in
                XCTAssertTrue("\(error)".contains("'\(bad)'"), "\(error)")
            }
        }
    }

    func testAuthorizationHeaders() {
        XCTAssertEqual(BearerCredentials.token(fromHeader: "Bearer abc.def.ghi"), .success("abc.def.ghi"))
        XCTAssertEqual(BearerCredentials.token(fromHeader: "bearer  abc"), .success("abc"))
        let basic = "Basic " + Data("user:abc.def.ghi".utf8).base64EncodedString()
        XCTAssertEqual(BearerCredentials.token(fromHeader: basic), .success("abc.def.ghi"))
        XCTAssertEqual(BearerCredentials.token(fromHeader: nil), .failure(.missing))
        XCTAssertEqual(BearerCredentials.token(fromHeader: "  "), .failure(.missing))
        XCTAssertEqual(BearerCredentials.token(fromHeader: "Bearer"), .failure(.malformed))
        XCTAssertEqual(BearerCredentials.token(fromHeader: "Bearer a b"), .failure(.malformed))
        XCTAssertEqual(BearerCredentials.token(fromHeader: "Basic !!!"), .failure(.malformed))
        XCTAssertEqual(BearerCredentials.token(fromHeader: "Basic " + Data("user:".utf8).base64EncodedString()), .failure(.malformed))
        XCTAssertEqual(BearerCredentials.token(fromHeader: "Digest x"), .failure(.unsupportedScheme))
    }

    func testISO8601IsUTCWholeSeconds() {
        let date = Date(timeIntervalSince1970: 1_700_000_000.75)
        XCTAssertEqual(ISO8601.string(from: date), "2023-11-14T22:13:20Z")
        XCTAssertEqual(ISO8601.date(from: "2023-11-14T22:13:20Z"), Date(timeIntervalSince1970: 1_700_000_000))
    }
}
