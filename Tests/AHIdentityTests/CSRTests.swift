import AHTestSupport
import AHIdentity
import AHSPIFFE
import Crypto
import Foundation
import SwiftASN1
import X509
import XCTest

final class CSRTests: XCTestCase {
    func testRoundTripReturnsTheRequestersKey() throws {
        let key = P256.Signing.PrivateKey()
        let pem = try CSR.make(privateKey: key, commonName: "node-1")
        XCTAssertTrue(pem.hasPrefix("-----BEGIN CERTIFICATE REQUEST-----"))
        let publicKey = try CSR.parseAndVerify(pem: pem)
        XCTAssertEqual(publicKey, Certificate.PublicKey(key.publicKey))
        XCTAssertNotEqual(publicKey, Certificate.PublicKey(P256.Signing.PrivateKey().publicKey))
    }

    func testTamperedSubjectIsRejected() throws {
        let pem = try CSR.make(privateKey: P256.Signing.PrivateKey(), commonName: "node-1")
        var der = try PEMDocument(pemString: pem).derBytes
        // Change the CN "node-1" to "node-2" inside the signed info; the DER stays well formed.
        let needle = Array("node-1".utf8)
        let at = try XCTUnwrap(der.indices.first { der[$0...].starts(with: needle) })
        der[at + 5] = UInt8(ascii: "2")
        let tampered = PEMDocument(type: "CERTIFICATE REQUEST", derBytes: der).pemString
        XCTAssertEqual(try CertificateSigningRequest(pemEncoded: tampered).subject.description, "CN=node-2", "still parses")
        XCTAssertThrowsError(try CSR.parseAndVerify(pem: tampered)) { error in
            XCTAssertTrue("\(error)".contains("signature does not verify"), "\(error)")
        }
    }

    func testSignatureByAnotherKeyIsRejected() throws {
        let claimed = P256.Signing.PrivateKey(), actual = P256.Signing.PrivateKey()
        let honest = try CertificateSigningRequest(
            version: .v1, subject: DistinguishedName { CommonName("x") },
            privateKey: .init(actual), attributes: .init(), signatureAlgorithm: .ecdsaWithSHA256
        )
        // Someone sends `claimed`'s public key with a signature made by a different key.
        let forged = try CertificateSigningRequest(
            version: .v1, subject: honest.subject, publicKey: .init(claimed.publicKey),
            attributes: .init(), signatureAlgorithm: .ecdsaWithSHA256, signature: honest.signature
        )
        XCTAssertThrowsError(try CSR.parseAndVerify(pem: try forged.serializeAsPEM().pemString))
    }

    func testGarbageIsRejected() {
        XCTAssertThrowsError(try CSR.parseAndVerify(pem: "not pem"))
        let wrongType = PEMDocument(type: "CERTIFICATE", derBytes: [0x30, 0x00]).pemString
        XCTAssertThrowsError(try CSR.parseAndVerify(pem: wrongType))
    }

    /// A CSR that asks for a SAN gets only the ID the server chose: the request's SAN is
    /// never consulted because parseAndVerify hands back only the key.
    func testRequestedSANIsIgnored() throws {
        let key = P256.Signing.PrivateKey()
        let wants = try CertificateSigningRequest(
            version: .v1, subject: DistinguishedName { CommonName("x") }, privateKey: .init(key),
            attributes: CertificateSigningRequest.Attributes([
                .init(ExtensionRequest(extensions: Certificate.Extensions {
                    SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://example.org/ah/serve")])
                })),
            ]),
            signatureAlgorithm: .ecdsaWithSHA256
        )
        let publicKey = try CSR.parseAndVerify(pem: try wants.serializeAsPEM().pemString)
        let ca = try CertificateAuthority.create(trustDomain: "example.org")
        let leaf = try ca.issueSVID(
            id: try .agent(trustDomain: "example.org", name: "n1"), publicKey: publicKey,
            notBefore: Date(), notAfter: Date().addingTimeInterval(60)
        )
        XCTAssertEqual(try leaf.uriSANs(), ["spiffe://example.org/ah/agent/n1"])
    }

    func testGnuTLSReadsTheCSR() throws {
        try Requirement.check(Certtool.isAvailable, "needs certtool (gnutls-bin, installed by .ci/run)")
        let dir = try makeTempDirectory(self)
        let path = dir.appendingPathComponent("req.pem").path
        try CSR.make(privateKey: P256.Signing.PrivateKey(), commonName: "node-1").write(toFile: path, atomically: true, encoding: .utf8)
        let outcome = try Certtool.run(["--crq-info", "--infile", path])
        XCTAssertEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.output.contains("CN=node-1"), outcome.output)
        XCTAssertTrue(outcome.output.contains("Self signature: verified"), outcome.output)
    }
}
