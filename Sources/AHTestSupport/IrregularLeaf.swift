import AHIdentity
import Crypto
import Foundation
import X509

/// Builds leaf certificates that `CertificateAuthority.issueSVID` refuses to make on purpose
/// (self-signed, several URI SANs, no URI SAN), with otherwise the same SVID profile, so that
/// a transport test exercises the one deviation only.
enum IrregularLeaf {
    /// - Parameters:
    ///   - sans: the SAN entries; the extension is omitted when empty.
    ///   - issuer: the signing CA, or `nil` for a self-signed certificate.
    static func make(
        commonName: String,
        sans: [GeneralName],
        subjectKey: P256.Signing.PrivateKey,
        issuer: CertificateAuthority?
    ) throws -> Certificate {
        let subject = try DistinguishedName { CommonName(commonName) }
        let publicKey = Certificate.PublicKey(subjectKey.publicKey)
        let signingKey = issuer?.privateKey ?? Certificate.PrivateKey(subjectKey)
        let authorityKeyID = try issuer?.certificate.extensions.subjectKeyIdentifier?.keyIdentifier
        let now = Date()
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.clientAuth, .serverAuth])
            if let authorityKeyID {
                AuthorityKeyIdentifier(keyIdentifier: authorityKeyID)
            }
            if !sans.isEmpty {
                SubjectAlternativeNames(sans)
            }
        }
        return try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(86_400),
            issuer: issuer?.certificate.subject ?? subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: signingKey
        )
    }
}
