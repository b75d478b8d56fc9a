import AHIdentity
import AHSPIFFE
import Crypto
import Foundation
import SwiftASN1
import X509
import XCTest

final class CertificateAuthorityTests: XCTestCase {
    func testNewCAProfile() throws {
        let before = Date()
        let ca = try CertificateAuthority.create(trustDomain: "example.org")
        let cert = ca.certificate
        XCTAssertEqual(cert.subject.description, "CN=ah CA example.org")
        XCTAssertEqual(cert.issuer, cert.subject)
        XCTAssertEqual(try cert.extensions.basicConstraints, .isCertificateAuthority(maxPathLength: 0))
        XCTAssertTrue(try XCTUnwrap(cert.extensions[oid: .X509ExtensionID.basicConstraints]).critical)
        let usage = try XCTUnwrap(try cert.extensions.keyUsage)
        XCTAssertTrue(usage.keyCertSign)
        XCTAssertTrue(usage.cRLSign)
        XCTAssertFalse(usage.digitalSignature)
        XCTAssertNotNil(try cert.extensions.subjectKeyIdentifier)
        XCTAssertEqual(try cert.uriSANs(), ["spiffe://example.org"])
        XCTAssertEqual(ca.trustDomain, "example.org")
        // Default lifetime: ten years (365-day years) from a slightly backdated start.
        XCTAssertLessThanOrEqual(cert.notValidBefore, before)
        XCTAssertEqual(cert.notValidAfter.timeIntervalSince(cert.notValidBefore), 10 * 365 * 86_400, accuracy: 1)
        XCTAssertNotNil(P256.Signing.PublicKey(cert.publicKey), "CA key is P-256")
        XCTAssertTrue(cert.publicKey.isValidSignature(cert.signature, for: cert), "self-signed")
    }

    func testValidityIsConfigurable() throws {
        let start = Date(timeIntervalSince1970: 1_700_000_000)
        let ca = try CertificateAuthority.create(trustDomain: "td", notBefore: start, validFor: 86_400)
        XCTAssertEqual(ca.certificate.notValidBefore, start)
        XCTAssertEqual(ca.certificate.notValidAfter, start.addingTimeInterval(86_400))
        XCTAssertThrowsError(try CertificateAuthority.create(trustDomain: "td", validFor: 0))
    }

    func testCreateRejectsInvalidTrustDomain() {
        XCTAssertThrowsError(try CertificateAuthority.create(trustDomain: "Example.org")) { error in
            XCTAssertEqual((error as? SPIFFEIDError)?.rule, .trustDomainUppercase)
        }
        XCTAssertThrowsError(try CertificateAuthority.create(trustDomain: ""))
    }

    func testPinIsSHA256OfTheDERInThePEM() throws {
        let ca = try CertificateAuthority.create(trustDomain: "example.org")
        let pin = ca.sha256Pin
        XCTAssertNotNil(pin.range(of: "^sha256:[0-9a-f]{64}$", options: .regularExpression), pin)
        // Recompute independently from the PEM text: base64 body -> DER -> SHA-256.
        let pem = try ca.certificatePEM()
        let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        let der = try XCTUnwrap(Data(base64Encoded: body))
        let hex = SHA256.hash(data: der).map { String(format: "%02x", $0) }.joined()
        XCTAssertEqual(pin, "sha256:" + hex)
        XCTAssertNotEqual(pin, try CertificateAuthority.create(trustDomain: "example.org").sha256Pin, "pins are per CA")
    }

    func testLoadFromPEMRoundTrip() throws {
        let ca = try CertificateAuthority.create(trustDomain: "example.org")
        let keyPEM = try ca.privateKey.serializeAsPEM().pemString
        XCTAssertTrue(keyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----"), "PKCS#8")
        let loaded = try CertificateAuthority(certificatePEM: try ca.certificatePEM(), privateKeyPEM: keyPEM)
        XCTAssertEqual(loaded.sha256Pin, ca.sha256Pin)
        XCTAssertEqual(loaded.trustDomain, "example.org")
        // A loaded CA issues leaves that chain to the original.
        let leafKey = P256.Signing.PrivateKey()
        let leaf = try loaded.issueSVID(
            id: try .agent(trustDomain: "example.org", name: "n"),
            publicKey: .init(leafKey.publicKey), notBefore: Date(), notAfter: Date().addingTimeInterval(60)
        )
        XCTAssertTrue(ca.certificate.publicKey.isValidSignature(leaf.signature, for: leaf))
    }

    func testLoadRejectsMismatchedKey() throws {
        let ca = try CertificateAuthority.create(trustDomain: "example.org")
        let otherKey = P256.Signing.PrivateKey().pemRepresentation
        XCTAssertThrowsError(try CertificateAuthority(certificatePEM: try ca.certificatePEM(), privateKeyPEM: otherKey)) { error in
            XCTAssertTrue("\(error)".contains("does not match"), "\(error)")
        }
    }

    func testLoadRejectsNonCACertificate() throws {
        let ca = try CertificateAuthority.create(trustDomain: "example.org")
        let leafKey = P256.Signing.PrivateKey()
        let leaf = try ca.issueSVID(
            id: try .agent(trustDomain: "example.org", name: "n"),
            publicKey: .init(leafKey.publicKey), notBefore: Date(), notAfter: Date().addingTimeInterval(60)
        )
        XCTAssertThrowsError(try CertificateAuthority(certificate: leaf, privateKey: .init(leafKey))) { error in
            XCTAssertTrue("\(error)".contains("not a CA"), "\(error)")
        }
    }
}
