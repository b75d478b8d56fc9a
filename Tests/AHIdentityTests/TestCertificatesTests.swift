import AHIdentity
import AHSPIFFE
import AHTestSupport
import Foundation
import X509
import XCTest

/// The fixtures the transport's refusal tests rely on must be wrong in exactly the stated way;
/// certtool (GnuTLS, as the transport) confirms which ones verify.
final class TestCertificatesTests: XCTestCase {
    private var authority: TestCertificates.Authority!
    private let id = try! SPIFFEID(parsing: "spiffe://example.org/ah/agent/n1")

    override func setUpWithError() throws {
        authority = try TestCertificates.authority(in: try makeTempDirectory(self))
    }

    private func leaf(_ files: IdentityFiles) throws -> Certificate {
        try PEMFile.readCertificate(from: URL(fileURLWithPath: files.certPath))
    }

    private func verifies(_ files: IdentityFiles) throws -> Bool {
        try Certtool.verify(leaf: files.certPath, ca: files.caPath).status == 0
    }

    private func assertKeyMatches(_ files: IdentityFiles, file: StaticString = #filePath, line: UInt = #line) throws {
        let key = try PEMFile.readPrivateKey(from: URL(fileURLWithPath: files.keyPath))
        XCTAssertEqual(key.publicKey, try leaf(files).publicKey, file: file, line: line)
        XCTAssertEqual(try fileMode(files.keyPath), 0o600, file: file, line: line)
        XCTAssertEqual(files.caPath, authority.caPath, "always the trusted CA", file: file, line: line)
    }

    func testValid() throws {
        let files = try authority.valid(id)
        try assertKeyMatches(files)
        XCTAssertEqual(try leaf(files).uriSANs(), [id.description])
        XCTAssertTrue(try verifies(files))
    }

    func testSignedByOtherCA() throws {
        let files = try authority.signedByOtherCA(id)
        try assertKeyMatches(files)
        let cert = try leaf(files)
        XCTAssertEqual(try cert.uriSANs(), [id.description])
        XCTAssertTrue(authority.otherCA.certificate.publicKey.isValidSignature(cert.signature, for: cert))
        XCTAssertFalse(try verifies(files))
        XCTAssertEqual(try Certtool.verify(leaf: files.certPath, ca: authority.otherCAPath).status, 0, "fine under its own CA")
    }

    func testExpired() throws {
        let files = try authority.expired(id)
        try assertKeyMatches(files)
        XCTAssertLessThan(try leaf(files).notValidAfter, Date())
        XCTAssertGreaterThan(try leaf(files).notValidBefore, authority.ca.certificate.notValidBefore, "inside CA lifetime")
        let outcome = try Certtool.verify(leaf: files.certPath, ca: files.caPath)
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertTrue(outcome.output.contains("expired"), outcome.output)
    }

    func testNotYetValid() throws {
        let files = try authority.notYetValid(id)
        try assertKeyMatches(files)
        XCTAssertGreaterThan(try leaf(files).notValidBefore, Date())
        let outcome = try Certtool.verify(leaf: files.certPath, ca: files.caPath)
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertTrue(outcome.output.contains("not yet valid"), outcome.output)
    }

    func testSelfSigned() throws {
        let files = try authority.selfSigned(id)
        try assertKeyMatches(files)
        let cert = try leaf(files)
        XCTAssertEqual(cert.issuer, cert.subject)
        XCTAssertTrue(cert.publicKey.isValidSignature(cert.signature, for: cert))
        XCTAssertEqual(try cert.extensions.basicConstraints, .notCertificateAuthority)
        XCTAssertEqual(try cert.uriSANs(), [id.description])
        XCTAssertFalse(try verifies(files))
    }

    func testTwoURISANs() throws {
        let second = try SPIFFEID(parsing: "spiffe://example.org/ah/serve")
        let files = try authority.twoURISANs(id, second: second)
        try assertKeyMatches(files)
        XCTAssertEqual(try leaf(files).uriSANs(), [id.description, second.description])
        XCTAssertTrue(try verifies(files), "the chain is fine; only the SPIFFE check must refuse it")
    }

    func testNoURISAN() throws {
        let files = try authority.noURISAN()
        try assertKeyMatches(files)
        XCTAssertEqual(try leaf(files).uriSANs(), [])
        XCTAssertEqual(Array(try XCTUnwrap(try leaf(files).extensions.subjectAlternativeNames)), [.dnsName("localhost")])
        XCTAssertTrue(try verifies(files))
        let bare = try authority.noURISAN(dnsNames: [], name: "nosan-bare")
        XCTAssertNil(try leaf(bare).extensions.subjectAlternativeNames)
        XCTAssertTrue(try verifies(bare))
    }

    func testDistinctFilesPerCase() throws {
        let sets = [
            try authority.valid(id), try authority.signedByOtherCA(id), try authority.expired(id),
            try authority.notYetValid(id), try authority.selfSigned(id), try authority.noURISAN(),
            try authority.twoURISANs(id, second: try .accessPoint(trustDomain: "example.org")),
        ]
        XCTAssertEqual(Set(sets.map(\.certPath)).count, sets.count)
        XCTAssertEqual(Set(sets.map(\.keyPath)).count, sets.count)
    }
}
