#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AHIdentity
import Crypto
import Foundation
import X509
import XCTest

final class PEMFileTests: XCTestCase {
    /// Runs `body` under `mask`, restoring the previous umask (XCTest runs tests serially).
    private func withUmask<T>(_ mask: mode_t, _ body: () throws -> T) rethrows -> T {
        let old = umask(mask)
        defer { umask(old) }
        return try body()
    }

    func testPrivateKeyIs0600EvenUnderAPermissiveUmask() throws {
        let dir = try makeTempDirectory(self)
        let url = dir.appendingPathComponent("key.pem")
        try withUmask(0) { try PEMFile.writePrivateKey(P256.Signing.PrivateKey(), to: url) }
        XCTAssertEqual(try fileMode(url.path), 0o600)
    }

    func testCertificateIs0644EvenUnderARestrictiveUmask() throws {
        let dir = try makeTempDirectory(self)
        let url = dir.appendingPathComponent("ca.pem")
        let ca = try CertificateAuthority.create(trustDomain: "td")
        try withUmask(0o077) { try PEMFile.writeCertificate(ca.certificate, to: url) }
        XCTAssertEqual(try fileMode(url.path), 0o644)
    }

    /// The key goes into a new inode that is renamed over the old file: a world-readable file
    /// that already sat at the destination never receives key bytes (a hard link to it still
    /// shows the old content), and the destination ends up 0600.
    func testKeyReplacesAnExistingFileByRenameNotInPlace() throws {
        let dir = try makeTempDirectory(self)
        let url = dir.appendingPathComponent("key.pem")
        let witness = dir.appendingPathComponent("witness")
        try "old\n".write(to: url, atomically: false, encoding: .utf8)
        XCTAssertEqual(chmod(url.path, 0o644), 0)
        XCTAssertEqual(link(url.path, witness.path), 0)
        try PEMFile.writePrivateKey(P256.Signing.PrivateKey(), to: url)
        XCTAssertEqual(try String(contentsOf: witness, encoding: .utf8), "old\n")
        XCTAssertEqual(try fileMode(url.path), 0o600)
        XCTAssertTrue(try String(contentsOf: url, encoding: .utf8).hasPrefix("-----BEGIN PRIVATE KEY-----"))
    }

    func testNoTempFilesAreLeftBehind() throws {
        let dir = try makeTempDirectory(self)
        try PEMFile.writePrivateKey(P256.Signing.PrivateKey(), to: dir.appendingPathComponent("k.pem"))
        try PEMFile.writeCertificate(try CertificateAuthority.create(trustDomain: "td").certificate, to: dir.appendingPathComponent("c.pem"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["c.pem", "k.pem"])
    }

    func testWriteIntoMissingDirectoryFails() throws {
        let dir = try makeTempDirectory(self)
        let url = dir.appendingPathComponent("missing/key.pem")
        XCTAssertThrowsError(try PEMFile.writePrivateKey(P256.Signing.PrivateKey(), to: url))
    }

    func testKeyRoundTrip() throws {
        let dir = try makeTempDirectory(self)
        let url = dir.appendingPathComponent("key.pem")
        let key = P256.Signing.PrivateKey()
        try PEMFile.writePrivateKey(key, to: url)
        XCTAssertEqual(try PEMFile.readP256PrivateKey(from: url).rawRepresentation, key.rawRepresentation)
        XCTAssertEqual(try PEMFile.readPrivateKey(from: url).publicKey, Certificate.PublicKey(key.publicKey))
    }

    func testChainFileRoundTripKeepsOrder() throws {
        let dir = try makeTempDirectory(self)
        let url = dir.appendingPathComponent("chain.pem")
        let a = try CertificateAuthority.create(trustDomain: "a").certificate
        let b = try CertificateAuthority.create(trustDomain: "b").certificate
        try PEMFile.writeCertificates([a, b], to: url)
        XCTAssertEqual(try PEMFile.readCertificates(from: url), [a, b])
        XCTAssertEqual(try PEMFile.readCertificate(from: url), a)
        let text = try String(contentsOf: url, encoding: .utf8)
        XCTAssertEqual(text.components(separatedBy: "-----BEGIN CERTIFICATE-----").count - 1, 2)
        XCTAssertTrue(text.hasSuffix("-----END CERTIFICATE-----\n"))
    }

    func testReadingTheWrongKindOfFileFails() throws {
        let dir = try makeTempDirectory(self)
        let keyURL = dir.appendingPathComponent("key.pem")
        let certURL = dir.appendingPathComponent("cert.pem")
        try PEMFile.writePrivateKey(P256.Signing.PrivateKey(), to: keyURL)
        try PEMFile.writeCertificate(try CertificateAuthority.create(trustDomain: "td").certificate, to: certURL)
        XCTAssertThrowsError(try PEMFile.readCertificates(from: keyURL)) { error in
            XCTAssertTrue("\(error)".contains("expected CERTIFICATE blocks, found PRIVATE KEY"), "\(error)")
        }
        XCTAssertThrowsError(try PEMFile.readPrivateKey(from: certURL))
        XCTAssertThrowsError(try PEMFile.readCertificates(from: dir.appendingPathComponent("absent.pem")))
        XCTAssertThrowsError(try PEMFile.writeCertificates([], to: certURL))
    }
}
