import AHIdentity
import AHSPIFFE
import Crypto
import Foundation
import X509

/// The access point's data directory: the trust domain's CA, the access point's own SVID,
/// and the SQLite state. Created on first start (directory 0700, keys 0600), reused after.
public struct AccessPointDataDirectory: Sendable {
    public let url: URL
    public let ca: CertificateAuthority
    public let trustDomain: String

    public var caCertificatePath: String { url.appendingPathComponent("ca.pem").path }
    public var caKeyPath: String { url.appendingPathComponent("ca-key.pem").path }
    /// Leaf first, then the CA: executors on first contact find the pinned CA in the chain.
    public var serveCertificatePath: String { url.appendingPathComponent("serve.pem").path }
    public var serveKeyPath: String { url.appendingPathComponent("serve-key.pem").path }
    public var statePath: String { url.appendingPathComponent("state.sqlite").path }
    /// 32 random bytes (0600) that sign QUIC stateless resets; kept across restarts so that a
    /// restarted access point can tell the peers of its previous run to reconnect at once.
    public var statelessResetKeyPath: String { url.appendingPathComponent("stateless-reset.key").path }

    /// `sha256:HEX` of the CA certificate, what `ah ca pin` prints and executors pin.
    public var caPin: String { ca.sha256Pin }

    /// The access point's own SVID lives this long; it is re-issued at start once half is used.
    public static let serveCertificateLifetime: TimeInterval = 30 * 86_400

    /// Opens `path`, creating it (and the CA) when `create` is true and it does not exist yet.
    /// A `trustDomain` that differs from the existing CA's is an error: it would strand
    /// every enrolled executor.
    public static func open(path: String, trustDomain requested: String?, create: Bool, now: Date = Date()) throws -> AccessPointDataDirectory {
        let url = URL(fileURLWithPath: path)
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if !fm.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard create else { throw DataDirectoryError("data directory \(path) does not exist; start `ah serve --data-dir \(path)` first") }
            try fm.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } else if !isDirectory.boolValue {
            throw DataDirectoryError("\(path) is not a directory")
        }
        let caPath = url.appendingPathComponent("ca.pem")
        let caKeyPath = url.appendingPathComponent("ca-key.pem")
        let ca: CertificateAuthority
        if fm.fileExists(atPath: caPath.path) {
            ca = try CertificateAuthority(certificate: try PEMFile.readCertificate(from: caPath),
                                          privateKey: try PEMFile.readPrivateKey(from: caKeyPath))
        } else {
            guard create else { throw DataDirectoryError("no CA in \(path); start `ah serve --data-dir \(path)` first") }
            let domain = requested ?? "example.org"
            _ = try SPIFFEID.accessPoint(trustDomain: domain)  // validates the trust domain
            ca = try CertificateAuthority.create(trustDomain: domain, notBefore: now.addingTimeInterval(-300))
            try PEMFile.writePrivateKey(ca.privateKey, to: caKeyPath)
            try PEMFile.writeCertificate(ca.certificate, to: caPath)
        }
        guard let domain = ca.trustDomain else { throw DataDirectoryError("the CA in \(path) carries no trust domain") }
        if let requested, requested != domain {
            throw DataDirectoryError("--trust-domain '\(requested)' does not match the existing CA's trust domain '\(domain)' in \(path)")
        }
        let directory = AccessPointDataDirectory(url: url, ca: ca, trustDomain: domain)
        if create { try directory.ensureServeIdentity(now: now) }
        return directory
    }

    /// The stateless-reset secret, created on first use.
    func statelessResetSecret() throws -> [UInt8] {
        let keyURL = URL(fileURLWithPath: statelessResetKeyPath)
        if let data = FileManager.default.contents(atPath: keyURL.path), data.count == 32 {
            return [UInt8](data)
        }
        var secret = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in secret.indices { secret[index] = generator.next() }
        try AtomicFileWriter.write(secret, to: keyURL, mode: PEMFile.privateKeyMode)
        return secret
    }

    /// Issues (or re-issues, past half its life) the access point's own SVID.
    func ensureServeIdentity(now: Date) throws {
        let certURL = URL(fileURLWithPath: serveCertificatePath)
        let keyURL = URL(fileURLWithPath: serveKeyPath)
        if let existing = try? PEMFile.readCertificates(from: certURL).first,
           FileManager.default.fileExists(atPath: keyURL.path) {
            let lifetime = existing.notValidAfter.timeIntervalSince(existing.notValidBefore)
            if existing.notValidAfter.timeIntervalSince(now) > lifetime / 2 { return }
        }
        let key = P256.Signing.PrivateKey()
        let id = try SPIFFEID.accessPoint(trustDomain: trustDomain)
        let leaf = try ca.issueSVID(id: id, publicKey: Certificate.PublicKey(key.publicKey),
                                    notBefore: now.addingTimeInterval(-300),
                                    notAfter: now.addingTimeInterval(Self.serveCertificateLifetime))
        try PEMFile.writePrivateKey(key, to: keyURL)
        try PEMFile.writeCertificates([leaf, ca.certificate], to: certURL)
    }
}

public struct DataDirectoryError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
