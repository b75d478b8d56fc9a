import AHSPIFFE
import Crypto
import Foundation
import X509

/// Writes a complete identity (fresh key, SVID, trust bundle) into a directory; for dev
/// setups and tests, where the key is generated locally instead of through enrollment.
public enum DevIdentity {
    /// Writes `<basename>.pem` (the SVID; with `includeChain`, followed by the CA certificate),
    /// `<basename>-key.pem` (0600) and `caFileName` (the CA certificate as trust bundle).
    @discardableResult
    public static func write(
        ca: CertificateAuthority,
        id: SPIFFEID,
        in directory: URL,
        basename: String,
        notBefore: Date = Date().addingTimeInterval(-Validity.backdate),
        notAfter: Date,
        includeChain: Bool = false,
        caFileName: String = "ca.pem"
    ) throws -> IdentityFiles {
        guard !basename.isEmpty, !basename.contains("/"), basename != ".", basename != ".." else {
            throw IdentityError("invalid file basename \"\(basename)\"")
        }
        let key = P256.Signing.PrivateKey()
        let leaf = try ca.issueSVID(
            id: id,
            publicKey: Certificate.PublicKey(key.publicKey),
            notBefore: notBefore,
            notAfter: notAfter
        )
        let files = IdentityFiles(
            certPath: directory.appendingPathComponent(basename + ".pem").path,
            keyPath: directory.appendingPathComponent(basename + "-key.pem").path,
            caPath: directory.appendingPathComponent(caFileName).path
        )
        // Key first: a cert without its key is useless, a key without its cert is harmless.
        try PEMFile.writePrivateKey(key, to: URL(fileURLWithPath: files.keyPath))
        try PEMFile.writeCertificates(includeChain ? [leaf, ca.certificate] : [leaf], to: URL(fileURLWithPath: files.certPath))
        try PEMFile.writeCertificate(ca.certificate, to: URL(fileURLWithPath: files.caPath))
        return files
    }
}
