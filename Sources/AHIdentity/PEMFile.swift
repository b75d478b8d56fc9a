import Crypto
import Foundation
import SwiftASN1
import X509

/// Reading and writing the PEM files identities live in.
///
/// Encodings are the ones GnuTLS (and OpenSSL) read without options: certificates as
/// "CERTIFICATE", private keys as unencrypted PKCS#8 "PRIVATE KEY". Keys are written 0600
/// from creation; certificates 0644.
public enum PEMFile {
    public static let privateKeyMode: mode_t = 0o600
    public static let certificateMode: mode_t = 0o644

    // MARK: writing

    public static func writePrivateKey(_ key: P256.Signing.PrivateKey, to url: URL) throws {
        try AtomicFileWriter.write(Array(key.pemRepresentation.utf8) + [0x0A], to: url, mode: privateKeyMode)
    }

    public static func writePrivateKey(_ key: Certificate.PrivateKey, to url: URL) throws {
        let pem = try key.serializeAsPEM().pemString
        try AtomicFileWriter.write(Array(pem.utf8) + [0x0A], to: url, mode: privateKeyMode)
    }

    public static func writeCertificate(_ certificate: Certificate, to url: URL) throws {
        try writeCertificates([certificate], to: url)
    }

    /// Several certificates in one file, in the given order (leaf first for a chain file).
    public static func writeCertificates(_ certificates: [Certificate], to url: URL) throws {
        guard !certificates.isEmpty else { throw IdentityError("refusing to write an empty certificate file \(url.path)") }
        try AtomicFileWriter.write(Array(try pemString(certificates).utf8), to: url, mode: certificateMode)
    }

    /// PEM text for `certificates`, one "CERTIFICATE" block each, newline-terminated.
    public static func pemString(_ certificates: [Certificate]) throws -> String {
        try certificates.map { try $0.serializeAsPEM().pemString + "\n" }.joined()
    }

    // MARK: reading

    /// All certificates in a PEM file, in file order; blocks of other types are an error, since
    /// a key in a certificate bundle means someone pointed a flag at the wrong file.
    public static func readCertificates(from url: URL) throws -> [Certificate] {
        let documents = try readDocuments(from: url)
        let certificates = try documents.map { document in
            guard document.discriminator == "CERTIFICATE" else {
                throw IdentityError("\(url.path): expected CERTIFICATE blocks, found \(document.discriminator)")
            }
            return try Certificate(derEncoded: document.derBytes)
        }
        guard !certificates.isEmpty else { throw IdentityError("\(url.path): no CERTIFICATE block") }
        return certificates
    }

    /// The first certificate of a PEM file (the leaf of a chain file).
    public static func readCertificate(from url: URL) throws -> Certificate {
        try readCertificates(from: url)[0]
    }

    /// A private key in PKCS#8 ("PRIVATE KEY"), SEC1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY") form.
    public static func readPrivateKey(from url: URL) throws -> Certificate.PrivateKey {
        let documents = try readDocuments(from: url)
        guard documents.count == 1 else {
            throw IdentityError("\(url.path): expected exactly one private key block, found \(documents.count)")
        }
        do {
            return try Certificate.PrivateKey(pemDocument: documents[0])
        } catch {
            // GnuTLS-written EC keys can carry a 33-byte scalar that the strict parser refuses.
            if let key = try? ECPrivateKeyDecoder.decode(documents[0]) { return key }
            throw IdentityError("\(url.path): not a usable private key: \(error)")
        }
    }

    /// A P-256 private key (the only kind `ah` generates).
    public static func readP256PrivateKey(from url: URL) throws -> P256.Signing.PrivateKey {
        let documents = try readDocuments(from: url)
        guard documents.count == 1 else {
            throw IdentityError("\(url.path): expected exactly one private key block, found \(documents.count)")
        }
        do {
            return try P256.Signing.PrivateKey(pemRepresentation: documents[0].pemString)
        } catch {
            if let key = try? ECPrivateKeyDecoder.decodeP256(documents[0]) { return key }
            throw IdentityError("\(url.path): not a P-256 private key: \(error)")
        }
    }

    private static func readDocuments(from url: URL) throws -> [PEMDocument] {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw IdentityError("cannot read \(url.path): \(error.localizedDescription)")
        }
        do {
            return try PEMDocument.parseMultiple(pemString: text)
        } catch {
            throw IdentityError("\(url.path): not valid PEM: \(error)")
        }
    }
}
