import AHIdentity
import AHSPIFFE
import Crypto
import Foundation
import SwiftASN1
@_spi(FixedExpiryValidationTime) import X509
import XCTest

final class SVIDTests: XCTestCase {
    private var ca: CertificateAuthority!
    private let id = try! SPIFFEID(parsing: "spiffe://example.org/ah/agent/node-1")
    /// Taken in setUp, after the CA exists: XCTest creates every test case object when the
    /// run starts, so a stored `let` would date from minutes before the CA (whose validity
    /// starts when it is created) in a long run, and the leaf would predate its issuer.
    private var start = Date()

    override func setUpWithError() throws {
        ca = try CertificateAuthority.create(trustDomain: "example.org")
        start = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.up))
    }

    private func issue(_ id: SPIFFEID? = nil) throws -> Certificate {
        try ca.issueSVID(
            id: id ?? self.id,
            publicKey: .init(P256.Signing.PrivateKey().publicKey),
            notBefore: start, notAfter: start.addingTimeInterval(3600)
        )
    }

    func testExactlyOneURISANWhichIsTheID() throws {
        let leaf = try issue()
        let sans = try XCTUnwrap(try leaf.extensions.subjectAlternativeNames)
        XCTAssertEqual(Array(sans), [.uniformResourceIdentifier("spiffe://example.org/ah/agent/node-1")])
    }

    func testNotACAWithCriticalDigitalSignatureUsage() throws {
        let leaf = try issue()
        XCTAssertEqual(try leaf.extensions.basicConstraints, .notCertificateAuthority)
        let usage = try XCTUnwrap(try leaf.extensions.keyUsage)
        XCTAssertEqual(usage, KeyUsage(digitalSignature: true))
        XCTAssertTrue(try XCTUnwrap(leaf.extensions[oid: .X509ExtensionID.keyUsage]).critical)
    }

    func testBothTLSExtendedKeyUsages() throws {
        let eku = try XCTUnwrap(try issue().extensions.extendedKeyUsage)
        XCTAssertEqual(Set(eku.map { $0 }), [.clientAuth, .serverAuth])
        XCTAssertEqual(eku.count, 2)
    }

    func testChainsToTheCA() throws {
        let leaf = try issue()
        XCTAssertEqual(leaf.issuer, ca.certificate.subject)
        XCTAssertTrue(ca.certificate.publicKey.isValidSignature(leaf.signature, for: leaf))
        let aki = try XCTUnwrap(try leaf.extensions.authorityKeyIdentifier)
        XCTAssertEqual(aki.keyIdentifier, try ca.certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
        let otherCA = try CertificateAuthority.create(trustDomain: "example.org")
        XCTAssertFalse(otherCA.certificate.publicKey.isValidSignature(leaf.signature, for: leaf))
    }

    func testSubjectAndValidity() throws {
        let leaf = try issue()
        XCTAssertEqual(leaf.subject.description, "CN=node-1")
        XCTAssertEqual(leaf.notValidBefore, start)
        XCTAssertEqual(leaf.notValidAfter, start.addingTimeInterval(3600))
        let bare = try issue(try SPIFFEID(parsing: "spiffe://example.org"))
        XCTAssertEqual(bare.subject.description, "CN=spiffe://example.org", "no path: CN is the ID")
    }

    func testSerialNumbersAreRandom() throws {
        let a = try issue(), b = try issue()
        XCTAssertNotEqual(a.serialNumber, b.serialNumber)
        XCTAssertGreaterThanOrEqual(a.serialNumber.bytes.count, 8)
    }

    func testRejectsInvertedOrOverlongValidity() throws {
        let key = Certificate.PublicKey(P256.Signing.PrivateKey().publicKey)
        XCTAssertThrowsError(try ca.issueSVID(id: id, publicKey: key, notBefore: start, notAfter: start))
        XCTAssertThrowsError(
            try ca.issueSVID(id: id, publicKey: key, notBefore: start, notAfter: ca.certificate.notValidAfter.addingTimeInterval(1))
        ) { error in
            XCTAssertTrue("\(error)".contains("after the CA's own expiry"), "\(error)")
        }
    }

    /// swift-certificates' own RFC 5280 verifier agrees the leaf chains to the CA at a time
    /// inside its validity, and refuses it outside.
    func testVerifierAcceptsLeafWithinValidity() async throws {
        let leaf = try issue()
        let roots = CertificateStore([ca.certificate])
        var inside = Verifier(rootCertificates: roots) { RFC5280Policy(fixedExpiryValidationTime: start.addingTimeInterval(60)) }
        let accepted = await inside.validate(leaf: leaf, intermediates: CertificateStore())
        guard case .validCertificate = accepted else { return XCTFail("rejected: \(accepted)") }
        var after = Verifier(rootCertificates: roots) { RFC5280Policy(fixedExpiryValidationTime: start.addingTimeInterval(7200)) }
        let expired = await after.validate(leaf: leaf, intermediates: CertificateStore())
        guard case .couldNotValidate = expired else { return XCTFail("accepted an expired leaf") }
    }
}
