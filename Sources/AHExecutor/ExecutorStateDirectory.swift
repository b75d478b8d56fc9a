import AHIdentity
import AHSPIFFE
import Crypto
import Foundation
import X509

/// Where an executor keeps its identity: `key.pem` (0600, generated here, never sent),
/// `cert.pem` (its SVID), `ca.pem` (the trust bundle) and `identity.json`.
public struct ExecutorStateDirectory: Sendable {
    public let url: URL

    public var keyPath: String { url.appendingPathComponent("key.pem").path }
    public var certificatePath: String { url.appendingPathComponent("cert.pem").path }
    public var caPath: String { url.appendingPathComponent("ca.pem").path }
    public var metadataPath: String { url.appendingPathComponent("identity.json").path }

    public struct Metadata: Codable, Sendable, Equatable {
        public var name: String
        public var spiffeID: String
        public var trustDomain: String
    }

    public init(path: String) throws {
        url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ExecutorError.usage("--state-dir '\(path)' is not a directory") }
        } else {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
    }

    public var hasIdentity: Bool {
        [keyPath, certificatePath, caPath, metadataPath].allSatisfy { FileManager.default.fileExists(atPath: $0) }
    }

    public func metadata() throws -> Metadata {
        guard let data = FileManager.default.contents(atPath: metadataPath) else {
            throw ExecutorError.usage("no identity in \(url.path); enroll first with --token and --ca-pin")
        }
        return try JSONDecoder().decode(Metadata.self, from: data)
    }

    public func certificate() throws -> Certificate {
        try PEMFile.readCertificate(from: URL(fileURLWithPath: certificatePath))
    }

    /// When the certificate was last written (enrollment or renewal).
    public func certificateModified() -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: certificatePath))?[.modificationDate] as? Date
    }

    public func privateKey() throws -> P256.Signing.PrivateKey {
        try PEMFile.readP256PrivateKey(from: URL(fileURLWithPath: keyPath))
    }

    /// Stores a fresh enrollment. The key goes first, so a crash never leaves a certificate
    /// without its key; each file is replaced atomically.
    func storeEnrollment(key: P256.Signing.PrivateKey, certificatePEM: String, caPEM: String, metadata: Metadata) throws {
        try PEMFile.writePrivateKey(key, to: URL(fileURLWithPath: keyPath))
        try writeAtomically(caPEM, to: caPath)
        try writeAtomically(certificatePEM, to: certificatePath)
        try writeAtomically(String(decoding: try JSONEncoder().encode(metadata), as: UTF8.self), to: metadataPath)
    }

    /// Replaces the certificate after a renewal (same key).
    func storeRenewal(certificatePEM: String) throws {
        try writeAtomically(certificatePEM, to: certificatePath)
    }

    /// Readers (the running agent, an operator) see the old file or the whole new one.
    private func writeAtomically(_ text: String, to path: String) throws {
        try AtomicFileWriter.write(Array(text.utf8), to: URL(fileURLWithPath: path), mode: PEMFile.certificateMode)
    }
}

/// Executor failures, each mapped by the CLI to an exit code.
public enum ExecutorError: Error, CustomStringConvertible, Equatable {
    /// Bad input (exit 2).
    case usage(String)
    /// The access point refused or could not be reached (exit 3).
    case refused(String)
    /// The stored certificate has expired: a new token is needed (exit 3).
    case identityExpired(String)

    public var description: String {
        switch self {
        case .usage(let s), .refused(let s): return s
        case .identityExpired(let s): return s
        }
    }
}
