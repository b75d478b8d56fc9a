import AHSPIFFE
import Foundation
import X509

extension CertificateAuthority {
    /// Issues an X.509-SVID leaf for `id` over `publicKey` (a key the subject generated itself;
    /// the CA never sees its private half).
    ///
    /// The profile follows the SPIFFE X.509-SVID spec: exactly one URI SAN (the ID),
    /// cA=false, keyUsage digitalSignature (critical), and both TLS EKUs because every `ah`
    /// node is a client on one connection and may be a server on another. Any SAN a CSR asked
    /// for is irrelevant here: the caller passes only the ID it decided on.
    public func issueSVID(
        id: SPIFFEID,
        publicKey: Certificate.PublicKey,
        notBefore: Date,
        notAfter: Date,
        serialNumber: Certificate.SerialNumber = Certificate.SerialNumber()
    ) throws -> Certificate {
        guard notBefore < notAfter else {
            throw IdentityError("SVID for \(id): notBefore \(notBefore) is not before notAfter \(notAfter)")
        }
        guard notAfter <= certificate.notValidAfter else {
            throw IdentityError(
                "SVID for \(id): notAfter \(notAfter) is after the CA's own expiry \(certificate.notValidAfter)"
            )
        }
        let commonName = id.segments().last ?? id.description
        let subject = try DistinguishedName { CommonName(commonName) }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.clientAuth, .serverAuth])
            SubjectKeyIdentifier(keyIdentifier: KeyIdentifier.of(publicKey))
            AuthorityKeyIdentifier(keyIdentifier: keyIdentifier)
            SubjectAlternativeNames([.uniformResourceIdentifier(id.description)])
        }
        return try Certificate(
            version: .v3,
            serialNumber: serialNumber,
            publicKey: publicKey,
            notValidBefore: notBefore,
            notValidAfter: notAfter,
            issuer: certificate.subject,
            subject: subject,
            extensions: extensions,
            issuerPrivateKey: privateKey
        )
    }
}
