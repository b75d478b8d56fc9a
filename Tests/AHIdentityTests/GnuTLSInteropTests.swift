import AHTestSupport
import AHIdentity
import AHSPIFFE
import Crypto
import Foundation
import SwiftASN1
import X509
import XCTest

/// Files made by GnuTLS's certtool work with `ah` (bring-your-own identities, Certs/README.md).
final class GnuTLSInteropTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        try Requirement.check(Certtool.isAvailable, "needs certtool (gnutls-bin, installed by .ci/run)")
        dir = try makeTempDirectory(self)
    }

    private func certtool(_ args: [String]) throws -> String {
        let outcome = try Certtool.run(args)
        XCTAssertEqual(outcome.status, 0, "certtool \(args.joined(separator: " ")): \(outcome.output)")
        return outcome.output
    }

    /// The public key certtool derives from a private key file.
    private func certtoolPublicKey(of keyPath: String) throws -> Certificate.PublicKey {
        let out = dir.appendingPathComponent("pub.der").path
        _ = try certtool(["--pubkey-info", "--load-privkey", keyPath, "--outder", "--outfile", out])
        return try Certificate.PublicKey(derEncoded: Array(try Data(contentsOf: URL(fileURLWithPath: out))))
    }

    /// certtool writes the private scalar with a leading zero when its top bit is set (33
    /// bytes), which a strict SEC1 parser rejects; about half of its keys are like that, so a
    /// dozen keys in each format hit the case with near certainty. The deterministic variant is
    /// `testThirtyThreeByteScalarIsAccepted`.
    func testKeysGeneratedByCerttoolLoad() throws {
        for index in 0..<12 {
            for pkcs8 in [false, true] {
                let path = dir.appendingPathComponent("k\(index)-\(pkcs8).pem").path
                var args = ["--generate-privkey", "--key-type", "ecdsa", "--curve", "secp256r1", "--no-text", "--outfile", path]
                if pkcs8 { args += ["--pkcs8", "--password="] }
                _ = try certtool(args)
                let url = URL(fileURLWithPath: path)
                let expected = try certtoolPublicKey(of: path)
                XCTAssertEqual(try PEMFile.readPrivateKey(from: url).publicKey, expected, path)
                XCTAssertEqual(Certificate.PublicKey(try PEMFile.readP256PrivateKey(from: url).publicKey), expected, path)
            }
        }
    }

    func testThirtyThreeByteScalarIsAccepted() throws {
        var key = P256.Signing.PrivateKey()
        while key.rawRepresentation.first! < 0x80 { key = P256.Signing.PrivateKey() }
        // SEQUENCE { INTEGER 1, OCTET STRING (0x00 || scalar), [0] { prime256v1 } }
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(1)
            try coder.serialize(ASN1OctetString(contentBytes: ArraySlice([0] + Array(key.rawRepresentation))))
            try coder.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { coder in
                try coder.serialize(ASN1ObjectIdentifier.NamedCurves.secp256r1)
            }
        }
        let url = dir.appendingPathComponent("k33.pem")
        try PEMDocument(type: "EC PRIVATE KEY", derBytes: serializer.serializedBytes).pemString
            .write(to: url, atomically: true, encoding: .utf8)
        XCTAssertEqual(try PEMFile.readP256PrivateKey(from: url).rawRepresentation, key.rawRepresentation)
        XCTAssertEqual(try PEMFile.readPrivateKey(from: url).publicKey, Certificate.PublicKey(key.publicKey))
    }

    /// The README's certtool CA: `ah` loads it, learns its trust domain from the URI SAN, its pin
    /// equals certtool's SHA-256 fingerprint, and leaves it issues verify under GnuTLS.
    func testCerttoolMadeCAIssuesVerifiableSVIDs() throws {
        let keyPath = dir.appendingPathComponent("ca-key.pem").path
        let certPath = dir.appendingPathComponent("ca.pem").path
        let template = dir.appendingPathComponent("ca.tmpl")
        try """
            cn = "ah CA example.org"
            uri = "spiffe://example.org"
            ca
            path_len = 0
            cert_signing_key
            crl_signing_key
            expiration_days = 3650

            """.write(to: template, atomically: true, encoding: .utf8)
        _ = try certtool(["--generate-privkey", "--key-type", "ecdsa", "--curve", "secp256r1", "--no-text", "--outfile", keyPath])
        _ = try certtool(["--generate-self-signed", "--load-privkey", keyPath, "--template", template.path, "--outfile", certPath])

        let ca = try CertificateAuthority(
            certificate: PEMFile.readCertificate(from: URL(fileURLWithPath: certPath)),
            privateKey: PEMFile.readPrivateKey(from: URL(fileURLWithPath: keyPath))
        )
        XCTAssertEqual(ca.trustDomain, "example.org")
        let fingerprint = try certtool(["--fingerprint", "--hash", "sha256", "--infile", certPath])
            .split(separator: "\n").first.map(String.init)
        XCTAssertEqual(ca.sha256Pin, "sha256:" + (fingerprint ?? ""))

        let files = try DevIdentity.write(
            ca: ca, id: try .agent(trustDomain: "example.org", name: "n1"), in: dir, basename: "n1",
            notAfter: Date().addingTimeInterval(3600), caFileName: "ca.pem"
        )
        let outcome = try Certtool.verify(leaf: files.certPath, ca: certPath)
        XCTAssertEqual(outcome.status, 0, outcome.output)
    }
}
