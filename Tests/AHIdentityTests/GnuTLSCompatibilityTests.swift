import AHIdentity
import AHSPIFFE
import AHTestSupport
import Foundation
import XCTest

/// The transport loads these files with GnuTLS; certtool is GnuTLS's own front end.
final class GnuTLSCompatibilityTests: XCTestCase {
    private var dir: URL!
    private var ca: CertificateAuthority!
    private var files: IdentityFiles!

    override func setUpWithError() throws {
        try Requirement.check(Certtool.isAvailable, "needs certtool (gnutls-bin, installed by .ci/run)")
        dir = try makeTempDirectory(self)
        ca = try CertificateAuthority.create(trustDomain: "example.org")
        files = try DevIdentity.write(
            ca: ca, id: try .agent(trustDomain: "example.org", name: "dev"), in: dir, basename: "dev",
            notAfter: Date().addingTimeInterval(86_400)
        )
    }

    func testCerttoolReadsThePrivateKey() throws {
        let outcome = try Certtool.run(["--key-info", "--infile", files.keyPath])
        XCTAssertEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.output.contains("SECP256R1"), outcome.output)
    }

    func testCerttoolReadsTheCAKeyWrittenFromCertificatePrivateKey() throws {
        let url = dir.appendingPathComponent("ca-key.pem")
        try PEMFile.writePrivateKey(ca.privateKey, to: url)
        let outcome = try Certtool.run(["--key-info", "--infile", url.path])
        XCTAssertEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.output.contains("SECP256R1"), outcome.output)
    }

    func testCerttoolReadsTheLeafAndSeesTheProfile() throws {
        let outcome = try Certtool.run(["--certificate-info", "--infile", files.certPath])
        XCTAssertEqual(outcome.status, 0, outcome.output)
        let out = outcome.output
        XCTAssertTrue(out.contains("URI: spiffe://example.org/ah/agent/dev"), out)
        XCTAssertTrue(out.contains("Certificate Authority (CA): FALSE"), out)
        XCTAssertTrue(out.contains("TLS WWW Client."), out)
        XCTAssertTrue(out.contains("TLS WWW Server."), out)
        XCTAssertTrue(out.contains("Digital signature."), out)
        XCTAssertTrue(out.contains("Subject: CN=dev"), out)
    }

    func testCerttoolReadsTheCA() throws {
        let outcome = try Certtool.run(["--certificate-info", "--infile", files.caPath])
        XCTAssertEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.output.contains("Certificate Authority (CA): TRUE"), outcome.output)
        XCTAssertTrue(outcome.output.contains("Path Length Constraint: 0"), outcome.output)
        XCTAssertTrue(outcome.output.contains("Certificate signing."), outcome.output)
    }

    func testCerttoolVerifiesTheLeafAgainstTheCA() throws {
        let outcome = try Certtool.verify(leaf: files.certPath, ca: files.caPath)
        XCTAssertEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.output.contains("Chain verification output: Verified."), outcome.output)
    }

    func testCerttoolVerifiesAChainFile() throws {
        let chained = try DevIdentity.write(
            ca: ca, id: try .accessPoint(trustDomain: "example.org"), in: dir, basename: "serve",
            notAfter: Date().addingTimeInterval(86_400), includeChain: true
        )
        XCTAssertEqual(try PEMFile.readCertificates(from: URL(fileURLWithPath: chained.certPath)).count, 2)
        let outcome = try Certtool.verify(leaf: chained.certPath, ca: chained.caPath)
        XCTAssertEqual(outcome.status, 0, outcome.output)
    }

    /// Control: certtool's verification is real, so the passes above mean something.
    func testCerttoolRefusesALeafFromAnotherCA() throws {
        let other = try CertificateAuthority.create(trustDomain: "example.org")
        let otherDir = dir.appendingPathComponent("other")
        try FileManager.default.createDirectory(at: otherDir, withIntermediateDirectories: true)
        let foreign = try DevIdentity.write(
            ca: other, id: try .agent(trustDomain: "example.org", name: "dev"), in: otherDir, basename: "dev",
            notAfter: Date().addingTimeInterval(86_400)
        )
        let outcome = try Certtool.verify(leaf: foreign.certPath, ca: files.caPath)
        XCTAssertNotEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.output.contains("Not verified"), outcome.output)
    }
}
