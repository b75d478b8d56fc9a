import AHIdentity
import AHSPIFFE
import Foundation
import X509
import XCTest

final class DevIdentityTests: XCTestCase {
    func testWritesLeafKeyAndBundle() throws {
        let dir = try makeTempDirectory(self)
        let ca = try CertificateAuthority.create(trustDomain: "example.org")
        let id = try SPIFFEID.agent(trustDomain: "example.org", name: "n1")
        let notAfter = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down) + 3600)
        let files = try DevIdentity.write(ca: ca, id: id, in: dir, basename: "n1", notAfter: notAfter)
        XCTAssertEqual(files, IdentityFiles(
            certPath: dir.appendingPathComponent("n1.pem").path,
            keyPath: dir.appendingPathComponent("n1-key.pem").path,
            caPath: dir.appendingPathComponent("ca.pem").path
        ))
        XCTAssertEqual(try fileMode(files.keyPath), 0o600)
        XCTAssertEqual(try fileMode(files.certPath), 0o644)
        let leaves = try PEMFile.readCertificates(from: URL(fileURLWithPath: files.certPath))
        XCTAssertEqual(leaves.count, 1, "leaf only by default")
        XCTAssertEqual(try leaves[0].uriSANs(), [id.description])
        XCTAssertEqual(leaves[0].notValidAfter, notAfter)
        XCTAssertEqual(try PEMFile.readCertificates(from: URL(fileURLWithPath: files.caPath)), [ca.certificate])
        // The key on disk is the one the certificate certifies.
        XCTAssertEqual(try PEMFile.readPrivateKey(from: URL(fileURLWithPath: files.keyPath)).publicKey, leaves[0].publicKey)
    }

    func testIncludeChainAndCustomBundleName() throws {
        let dir = try makeTempDirectory(self)
        let ca = try CertificateAuthority.create(trustDomain: "example.org")
        let files = try DevIdentity.write(
            ca: ca, id: try .accessPoint(trustDomain: "example.org"), in: dir, basename: "serve",
            notAfter: Date().addingTimeInterval(60), includeChain: true, caFileName: "bundle.pem"
        )
        XCTAssertEqual(URL(fileURLWithPath: files.caPath).lastPathComponent, "bundle.pem")
        let chain = try PEMFile.readCertificates(from: URL(fileURLWithPath: files.certPath))
        XCTAssertEqual(chain.count, 2)
        XCTAssertEqual(chain[1], ca.certificate)
    }

    func testRejectsPathLikeBasenames() throws {
        let dir = try makeTempDirectory(self)
        let ca = try CertificateAuthority.create(trustDomain: "example.org")
        for bad in ["", "../x", "a/b", ".."] {
            XCTAssertThrowsError(
                try DevIdentity.write(ca: ca, id: try .accessPoint(trustDomain: "example.org"), in: dir, basename: bad, notAfter: Date().addingTimeInterval(60)),
                bad
            )
        }
    }
}
