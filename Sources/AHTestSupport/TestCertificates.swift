import AHIdentity
import AHSPIFFE
import Crypto
import Foundation
import X509

/// Certificate file sets for transport tests: good identities, and identities that are wrong
/// in exactly one way each, so that a refusal test fails for the reason it names.
///
/// Every returned `IdentityFiles.caPath` is the trusted CA of the `Authority` (the bundle the
/// *presenting* side uses to verify its peer), so a test can hand any set to either side and
/// only the flaw under test differs from a valid identity.
public enum TestCertificates {
    /// A fresh trusted CA for `trustDomain`, written as `ca.pem`/`ca-key.pem` in `directory`,
    /// plus an unrelated second CA (`other-ca.pem`/`other-ca-key.pem`) for wrong-issuer cases.
    public static func authority(in directory: URL, trustDomain: String = "example.org") throws -> Authority {
        try Authority(directory: directory, trustDomain: trustDomain)
    }

    public struct Authority: Sendable {
        public let directory: URL
        public let trustDomain: String
        public let ca: CertificateAuthority
        public let caPath: String
        public let caKeyPath: String
        /// A CA nobody trusts; `signedByOtherCA` leaves chain to it.
        public let otherCA: CertificateAuthority
        public let otherCAPath: String

        /// The CAs' validity starts 30 days back, so an "expired" leaf is still inside its
        /// issuer's lifetime and its expiry is its only flaw.
        static let caBackdate: TimeInterval = 30 * 86_400
        static let caLifetime: TimeInterval = 400 * 86_400

        init(directory: URL, trustDomain: String) throws {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            self.directory = directory
            self.trustDomain = trustDomain
            let start = Date().addingTimeInterval(-Self.caBackdate)
            ca = try CertificateAuthority.create(trustDomain: trustDomain, notBefore: start, validFor: Self.caLifetime)
            otherCA = try CertificateAuthority.create(trustDomain: trustDomain, notBefore: start, validFor: Self.caLifetime)
            caPath = directory.appendingPathComponent("ca.pem").path
            caKeyPath = directory.appendingPathComponent("ca-key.pem").path
            otherCAPath = directory.appendingPathComponent("other-ca.pem").path
            try PEMFile.writeCertificate(ca.certificate, to: URL(fileURLWithPath: caPath))
            try PEMFile.writePrivateKey(ca.privateKey, to: URL(fileURLWithPath: caKeyPath))
            try PEMFile.writeCertificate(otherCA.certificate, to: URL(fileURLWithPath: otherCAPath))
            try PEMFile.writePrivateKey(otherCA.privateKey, to: directory.appendingPathComponent("other-ca-key.pem"))
        }

        // MARK: good

        /// A valid SVID for `id`, issued by the trusted CA, valid from an hour ago for a day.
        public func valid(_ id: SPIFFEID, name: String? = nil) throws -> IdentityFiles {
            try issue(by: ca, id: id, name: name ?? "valid-" + Self.label(id), from: -3600, to: 86_400)
        }

        // MARK: wrong in one way each

        /// A well-formed SVID for `id` whose issuer is `otherCA`, which the peer does not trust.
        public func signedByOtherCA(_ id: SPIFFEID, name: String? = nil) throws -> IdentityFiles {
            try issue(by: otherCA, id: id, name: name ?? "otherca-" + Self.label(id), from: -3600, to: 86_400)
        }

        /// Issued by the trusted CA, but expired a day ago.
        public func expired(_ id: SPIFFEID, name: String? = nil) throws -> IdentityFiles {
            try issue(by: ca, id: id, name: name ?? "expired-" + Self.label(id), from: -2 * 86_400, to: -86_400)
        }

        /// Issued by the trusted CA, but valid only from tomorrow.
        public func notYetValid(_ id: SPIFFEID, name: String? = nil) throws -> IdentityFiles {
            try issue(by: ca, id: id, name: name ?? "notyet-" + Self.label(id), from: 86_400, to: 2 * 86_400)
        }

        /// A self-signed (cA=false) certificate carrying `id`: right name, no chain to the CA.
        public func selfSigned(_ id: SPIFFEID, name: String? = nil) throws -> IdentityFiles {
            let key = P256.Signing.PrivateKey()
            let leaf = try IrregularLeaf.make(
                commonName: id.segments().last ?? id.description,
                sans: [.uniformResourceIdentifier(id.description)],
                subjectKey: key, issuer: nil
            )
            return try write(leaf, key: key, name: name ?? "selfsigned-" + Self.label(id))
        }

        /// Issued by the trusted CA, with two URI SANs (`id` first, then `second`); the
        /// SPIFFE spec requires exactly one, so verifiers must refuse it.
        public func twoURISANs(_ id: SPIFFEID, second: SPIFFEID, name: String? = nil) throws -> IdentityFiles {
            let key = P256.Signing.PrivateKey()
            let leaf = try IrregularLeaf.make(
                commonName: id.segments().last ?? id.description,
                sans: [.uniformResourceIdentifier(id.description), .uniformResourceIdentifier(second.description)],
                subjectKey: key, issuer: ca
            )
            return try write(leaf, key: key, name: name ?? "twosans-" + Self.label(id))
        }

        /// Issued by the trusted CA, with no URI SAN (only `dnsNames` as SANs, or no SAN
        /// extension at all when that is empty): a valid TLS certificate with no SPIFFE ID.
        public func noURISAN(commonName: String = "no-uri-san", dnsNames: [String] = ["localhost"], name: String = "nosan") throws -> IdentityFiles {
            let key = P256.Signing.PrivateKey()
            let leaf = try IrregularLeaf.make(
                commonName: commonName, sans: dnsNames.map { .dnsName($0) }, subjectKey: key, issuer: ca
            )
            return try write(leaf, key: key, name: name)
        }

        // MARK: plumbing

        private func issue(by issuer: CertificateAuthority, id: SPIFFEID, name: String, from: TimeInterval, to: TimeInterval) throws -> IdentityFiles {
            let key = P256.Signing.PrivateKey()
            let now = Date()
            let leaf = try issuer.issueSVID(
                id: id, publicKey: Certificate.PublicKey(key.publicKey),
                notBefore: now.addingTimeInterval(from), notAfter: now.addingTimeInterval(to)
            )
            return try write(leaf, key: key, name: name)
        }

        private func write(_ leaf: Certificate, key: P256.Signing.PrivateKey, name: String) throws -> IdentityFiles {
            let files = IdentityFiles(
                certPath: directory.appendingPathComponent(name + ".pem").path,
                keyPath: directory.appendingPathComponent(name + "-key.pem").path,
                caPath: caPath
            )
            try PEMFile.writePrivateKey(key, to: URL(fileURLWithPath: files.keyPath))
            try PEMFile.writeCertificate(leaf, to: URL(fileURLWithPath: files.certPath))
            return files
        }

        /// A file-name-safe label for an ID: its last segment, or "td" for a bare trust domain.
        static func label(_ id: SPIFFEID) -> String {
            id.segments().last ?? "td"
        }
    }
}
