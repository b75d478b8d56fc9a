import Crypto
import Foundation
import SwiftASN1
import X509

/// PKCS#10 certificate signing requests for enrollment.
///
/// The executor generates its key pair and sends only a CSR; the access point learns the
/// public key and proof that the sender holds the private key. The CSR's subject and any
/// SAN/extension request are deliberately ignored: the access point decides the SPIFFE ID
/// from the join token, never from what the requester asks for.
public enum CSR {
    /// A PEM ("CERTIFICATE REQUEST") CSR for `privateKey`, with subject CN `commonName`.
    public static func make(privateKey: P256.Signing.PrivateKey, commonName: String) throws -> String {
        let csr = try CertificateSigningRequest(
            version: .v1,
            subject: DistinguishedName { CommonName(commonName) },
            privateKey: Certificate.PrivateKey(privateKey),
            attributes: CertificateSigningRequest.Attributes(),
            signatureAlgorithm: .ecdsaWithSHA256
        )
        return try csr.serializeAsPEM().pemString + "\n"
    }

    /// Parses a PEM CSR, verifies its self-signature with the key it carries, and returns that key.
    ///
    /// Throws when the PEM or DER is malformed or when the signature does not verify (a tampered
    /// request, or one whose key the sender does not hold).
    public static func parseAndVerify(pem: String) throws -> Certificate.PublicKey {
        let csr: CertificateSigningRequest
        do {
            csr = try CertificateSigningRequest(pemEncoded: pem)
        } catch {
            throw IdentityError("CSR is not a valid PEM CERTIFICATE REQUEST: \(error)")
        }
        // `isValidSignature(_:for:)` checks over the CSR's original info bytes, so any
        // modification of the signed part makes it fail.
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw IdentityError("CSR signature does not verify with the public key it carries")
        }
        return csr.publicKey
    }
}
