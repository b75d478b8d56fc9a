import AHIdentity
import AHSPIFFE
import Foundation
import X509
import XCTest

/// The logic behind `ah debug dev-certs`.
final class DevCertsTests: XCTestCase {
    private func inputError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            try body()
            XCTFail("accepted", file: file, line: line)
            return ""
        } catch let error as DevCerts.InputError {
            XCTAssertFalse(error.description.contains("\n"), "one line", file: file, line: line)
            return error.description
        } catch {
            XCTFail("wrong error type: \(error)", file: file, line: line)
            return ""
        }
    }

    func testDefaultsAreAccessPointAndDevAgent() throws {
        let ids = try DevCerts.validate(trustDomain: "example.org", ids: [], days: 30)
        XCTAssertEqual(ids.map(\.description), ["spiffe://example.org/ah/serve", "spiffe://example.org/ah/agent/dev"])
        let other = try DevCerts.validate(trustDomain: "corp.test", ids: [], days: 30)
        XCTAssertEqual(other.map(\.description), ["spiffe://corp.test/ah/serve", "spiffe://corp.test/ah/agent/dev"])
    }

    func testBadInputIsNamed() {
        XCTAssertEqual(inputError { _ = try DevCerts.validate(trustDomain: "Bad.TD", ids: [], days: 30) },
                       "bad --trust-domain \"Bad.TD\": trust domain must be lower case")
        XCTAssertEqual(inputError { _ = try DevCerts.validate(trustDomain: "td", ids: ["spiffe://td/a/"], days: 30) },
                       "bad --id \"spiffe://td/a/\": path must not end with '/'")
        XCTAssertTrue(inputError { _ = try DevCerts.validate(trustDomain: "td", ids: [], days: 0) }.hasPrefix("bad --days 0:"))
        XCTAssertTrue(inputError { _ = try DevCerts.validate(trustDomain: "td", ids: [], days: 3651) }.hasPrefix("bad --days 3651:"))
        XCTAssertNoThrow(try DevCerts.validate(trustDomain: "td", ids: [], days: 3650))
        XCTAssertTrue(inputError { _ = try DevCerts.validate(trustDomain: "td", ids: ["spiffe://other/ah/serve"], days: 1) }
            .contains("\"spiffe://other/ah/serve\": not in trust domain td"))
        XCTAssertTrue(inputError { _ = try DevCerts.validate(trustDomain: "td", ids: ["spiffe://td"], days: 1) }
            .contains("has no path"))
    }

    func testFileNameCollisionsAreRefused() {
        XCTAssertTrue(inputError { _ = try DevCerts.validate(trustDomain: "td", ids: ["spiffe://td/x/ca"], days: 1) }
            .contains("ca.pem would overwrite that of the CA certificate"))
        XCTAssertTrue(inputError { _ = try DevCerts.validate(trustDomain: "td", ids: ["spiffe://td/ca-key"], days: 1) }
            .contains("the CA key"))
        XCTAssertTrue(inputError { _ = try DevCerts.validate(trustDomain: "td", ids: ["spiffe://td/a/n", "spiffe://td/b/n"], days: 1) }
            .contains("\"spiffe://td/b/n\": its file n.pem would overwrite that of spiffe://td/a/n"))
        XCTAssertTrue(inputError { _ = try DevCerts.validate(trustDomain: "td", ids: ["spiffe://td/dev", "spiffe://td/dev-key"], days: 1) }
            .contains("dev-key.pem"))
    }

    func testGenerateWritesTheLayout() throws {
        let dir = try makeTempDirectory(self).appendingPathComponent("out/certs")
        let now = Date()
        let ids = try DevCerts.validate(trustDomain: "example.org", ids: [], days: 30)
        let result = try DevCerts.generate(directory: dir, trustDomain: "example.org", ids: ids, days: 30, now: now)
        XCTAssertEqual(try fileMode(dir.path), 0o700)
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(),
            ["ca-key.pem", "ca.pem", "dev-key.pem", "dev.pem", "serve-key.pem", "serve.pem"]
        )
        for key in ["ca-key.pem", "dev-key.pem", "serve-key.pem"] {
            XCTAssertEqual(try fileMode(dir.appendingPathComponent(key).path), 0o600, key)
        }
        XCTAssertFalse(result.caReused)
        XCTAssertEqual(result.identities.map(\.id), ids.map(\.description))
        let ca = try CertificateAuthority(
            certificate: PEMFile.readCertificate(from: URL(fileURLWithPath: result.caPath)),
            privateKey: PEMFile.readPrivateKey(from: URL(fileURLWithPath: result.caKeyPath))
        )
        XCTAssertEqual(result.caPin, ca.sha256Pin)
        let dev = try PEMFile.readCertificate(from: dir.appendingPathComponent("dev.pem"))
        XCTAssertEqual(try dev.uriSANs(), ["spiffe://example.org/ah/agent/dev"])
        XCTAssertEqual(dev.notValidAfter.timeIntervalSince(now), 30 * 86_400, accuracy: 2)
    }

    func testLongestLifetimeFitsInsideTheCA() throws {
        let dir = try makeTempDirectory(self)
        let ids = try DevCerts.defaultIDs(trustDomain: "td")
        let result = try DevCerts.generate(directory: dir, trustDomain: "td", ids: ids, days: DevCerts.maxDays)
        let ca = try PEMFile.readCertificate(from: URL(fileURLWithPath: result.caPath))
        XCTAssertGreaterThanOrEqual(ca.notValidAfter, try XCTUnwrap(result.identities.first).notAfter)
    }

    func testGenerateRevalidatesItsInput() throws {
        let dir = try makeTempDirectory(self)
        let message = inputError {
            _ = try DevCerts.generate(directory: dir, trustDomain: "td", ids: [try SPIFFEID(parsing: "spiffe://td")], days: 1)
        }
        XCTAssertTrue(message.contains("has no path"), message)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [], "nothing written")
    }

    func testRerunReusesTheCAUnlessAskedNot() throws {
        let dir = try makeTempDirectory(self)
        let ids = try DevCerts.validate(trustDomain: "example.org", ids: [], days: 1)
        let first = try DevCerts.generate(directory: dir, trustDomain: "example.org", ids: ids, days: 1)
        let second = try DevCerts.generate(directory: dir, trustDomain: "example.org", ids: ids, days: 1)
        XCTAssertTrue(second.caReused)
        XCTAssertEqual(second.caPin, first.caPin)
        let third = try DevCerts.generate(directory: dir, trustDomain: "example.org", ids: ids, days: 1, newCA: true)
        XCTAssertFalse(third.caReused)
        XCTAssertNotEqual(third.caPin, first.caPin)
    }

    func testExistingCAOfAnotherTrustDomainIsRefused() throws {
        let dir = try makeTempDirectory(self)
        _ = try DevCerts.generate(directory: dir, trustDomain: "a.test", ids: try .init(DevCerts.defaultIDs(trustDomain: "a.test")), days: 1)
        let message = inputError {
            _ = try DevCerts.generate(directory: dir, trustDomain: "b.test", ids: try DevCerts.defaultIDs(trustDomain: "b.test"), days: 1)
        }
        XCTAssertTrue(message.contains("is for trust domain a.test, not b.test"), message)
    }

    func testHalfACAIsRefused() throws {
        let dir = try makeTempDirectory(self)
        let ids = try DevCerts.defaultIDs(trustDomain: "td")
        _ = try DevCerts.generate(directory: dir, trustDomain: "td", ids: ids, days: 1)
        try FileManager.default.removeItem(at: dir.appendingPathComponent("ca-key.pem"))
        let message = inputError { _ = try DevCerts.generate(directory: dir, trustDomain: "td", ids: ids, days: 1) }
        XCTAssertTrue(message.contains("ca-key.pem is missing"), message)
    }

    func testOutMustBeADirectory() throws {
        let file = try makeTempDirectory(self).appendingPathComponent("plain")
        try "x".write(to: file, atomically: true, encoding: .utf8)
        let message = inputError {
            _ = try DevCerts.generate(directory: file, trustDomain: "td", ids: try DevCerts.defaultIDs(trustDomain: "td"), days: 1)
        }
        XCTAssertTrue(message.contains("exists and is not a directory"), message)
    }

    func testResultEncodesAsJSON() throws {
        let dir = try makeTempDirectory(self)
        let result = try DevCerts.generate(directory: dir, trustDomain: "td", ids: try DevCerts.defaultIDs(trustDomain: "td"), days: 1)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let object = try JSONSerialization.jsonObject(with: encoder.encode(result)) as? [String: Any]
        XCTAssertEqual(object?["caPin"] as? String, result.caPin)
        XCTAssertEqual((object?["identities"] as? [[String: Any]])?.count, 2)
    }
}
