import AHSPIFFE
import Crypto
import Foundation
import SwiftASN1
import X509

/// A small certificate authority that signs X.509-SVIDs for one trust domain.
///
/// The access point runs one; `ah debug dev-certs` and the tests make throwaway ones. The CA
/// is a self-signed root (no intermediates), so the trust bundle a peer needs is just
/// `certificate`, and the pin that operators compare out of band is `sha256Pin`.
public struct CertificateAuthority: Sendable {
    public let certificate: Certificate
    public let privateKey: Certificate.PrivateKey
    /// The trust domain from the CA's `spiffe://TD` URI SAN (set by `create`, the way SPIRE
    /// marks its CAs); `nil` for a brought-your-own CA without one.
    public let trustDomain: String?
    /// DER of `certificate`, kept because pins and PEM output need it repeatedly.
    public let certificateDER: [UInt8]
    /// The CA's subjectKeyIdentifier, copied into every issued certificate's authorityKeyIdentifier.
    let keyIdentifier: ArraySlice<UInt8>

    /// Wraps an existing CA certificate and its key, checking that they belong together and that
    /// the certificate may sign others.
    public init(certificate: Certificate, privateKey: Certificate.PrivateKey) throws {
        guard privateKey.publicKey == certificate.publicKey else {
            throw IdentityError("CA private key does not match the CA certificate's public key")
        }
        guard case .isCertificateAuthority? = try certificate.extensions.basicConstraints else {
            throw IdentityError("certificate \(certificate.subject) is not a CA (basicConstraints cA is not true)")
        }
        if let usage = try certificate.extensions.keyUsage, !usage.keyCertSign {
            throw IdentityError("CA certificate \(certificate.subject) lacks keyUsage keyCertSign")
        }
        self.certificate = certificate
        self.privateKey = privateKey
        self.certificateDER = try certificate.derBytes()
        self.trustDomain = try certificate.uriSANs().lazy
            .compactMap { try? SPIFFEID(parsing: $0) }
            .first { $0.path.isEmpty }?.trustDomain
        // Use the CA's own SKI when present so issued AKIs match what verifiers look up;
        // otherwise derive it the standard way.
        self.keyIdentifier = try certificate.extensions.subjectKeyIdentifier?.keyIdentifier
            ?? KeyIdentifier.of(certificate.publicKey)
    }

    /// Loads a CA from PEM text (certificate; key as PKCS#8, SEC1 or PKCS#1).
    public init(certificatePEM: String, privateKeyPEM: String) throws {
        try self.init(
            certificate: Certificate(pemEncoded: certificatePEM),
            privateKey: Certificate.PrivateKey(pemEncoded: privateKeyPEM)
        )
    }

    /// Creates a new self-signed P-256 CA for `trustDomain`.
    ///
    /// - Parameters:
    ///   - notBefore: start of validity; defaults to a few minutes ago to absorb clock skew.
    ///   - validFor: lifetime in seconds from `notBefore`; ten years by default.
    public static func create(
        trustDomain: String,
        notBefore: Date = Date().addingTimeInterval(-Validity.backdate),
        validFor: TimeInterval = Validity.caDefault,
        privateKey: P256.Signing.PrivateKey = P256.Signing.PrivateKey()
    ) throws -> CertificateAuthority {
        guard validFor > 0 else { throw IdentityError("CA lifetime must be positive, got \(validFor) s") }
        let trustDomainID = try SPIFFEID(trustDomain: trustDomain, path: "")
        let key = Certificate.PrivateKey(privateKey)
        let name = try DistinguishedName { CommonName("ah CA \(trustDomain)") }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(keyIdentifier: KeyIdentifier.of(key.publicKey))
            SubjectAlternativeNames([.uniformResourceIdentifier(trustDomainID.description)])
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: key.publicKey,
            notValidBefore: notBefore,
            notValidAfter: notBefore.addingTimeInterval(validFor),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: key
        )
        return try CertificateAuthority(certificate: certificate, privateKey: key)
    }

    /// `sha256:` + lowercase hex SHA-256 of the CA certificate's DER: the value an executor is
    /// given out of band to pin the access point's CA before it trusts anything it downloads.
    public var sha256Pin: String {
        Self.sha256Pin(ofDER: certificateDER)
    }

    /// The pin of any DER-encoded certificate, in the same format as `sha256Pin`.
    public static func sha256Pin(ofDER der: some DataProtocol) -> String {
        "sha256:" + SHA256.hash(data: der).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 0x10 ? "0" + hex : hex
        }.joined()
    }

    /// The CA certificate as PEM: the trust bundle peers load.
    public func certificatePEM() throws -> String {
        PEMDocument(type: "CERTIFICATE", derBytes: certificateDER).pemString + "\n"
    }
}
