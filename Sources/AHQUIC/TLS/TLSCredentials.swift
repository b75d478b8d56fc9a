import AHGnuTLS
import CGnuTLS
import Foundation

/// Where PEM material comes from: files on disk or bytes already in memory.
public enum PEMSource: Sendable, Hashable {
    case file(String)
    case memory([UInt8])

    func load() throws -> [UInt8] {
        switch self {
        case .memory(let bytes): return bytes
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw QUICError.credentials("cannot read \(path)")
            }
            return [UInt8](data)
        }
    }
}

/// Our certificate chain + private key, and the trust bundle peers are verified against.
/// A client may go without a certificate (enrollment does, before it has one); a server
/// that requires client certificates then refuses it during the handshake.
public struct TLSIdentity: Sendable, Hashable {
    public var certificateChain: PEMSource?
    public var privateKey: PEMSource?
    /// Required unless peers are verified against a pinned CA (`PeerTrust.pinnedCA`).
    public var trustBundle: PEMSource?

    public init(certificateChain: PEMSource?, privateKey: PEMSource?, trustBundle: PEMSource?) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
        self.trustBundle = trustBundle
    }

    /// Convenience for the common case of three PEM files.
    public init(certFile: String, keyFile: String, caFile: String) {
        self.init(certificateChain: .file(certFile), privateKey: .file(keyFile), trustBundle: .file(caFile))
    }
}

/// An endpoint's TLS material, loaded once and shared by every connection of the endpoint:
/// the certificate credentials and the parsed TLS 1.3-only priority cache. Each C object is
/// owned by its AHGnuTLS type (`GnuTLSCredentials`, `GnuTLSPriorities`), which frees it in
/// `deinit`; sessions hold this object through their connection, and GnuTLS keeps its own
/// reference to the priority cache for every session that uses it.
public final class TLSCredentials: @unchecked Sendable {
    let credentials: GnuTLSCredentials
    /// The parsed TLS priority string, shared by every session of the endpoint.
    let priorities: GnuTLSPriorities
    /// How many CA certificates the trust bundle held; an empty bundle is a configuration error.
    public let trustedCACount: Int

    var handle: gnutls_certificate_credentials_t { credentials.handle }
    var priority: gnutls_priority_t { priorities.handle }

    /// - Throws: `QUICError.credentials` with a sentence naming the bad input and GnuTLS's
    ///   error name and text.
    public init(_ identity: TLSIdentity) throws {
        do {
            let credentials = try GnuTLSCredentials()
            if let chainSource = identity.certificateChain, let keySource = identity.privateKey {
                try credentials.setKeyPair(chainPEM: try chainSource.load(), keyPEM: try keySource.load())
            } else if identity.certificateChain != nil || identity.privateKey != nil {
                throw QUICError.credentials("a certificate needs its private key and vice versa")
            }
            trustedCACount = try identity.trustBundle.map { try credentials.addTrust(pem: try $0.load()) } ?? 0
            priorities = try GnuTLSPriorities(GnuTLSPriorities.quic)
            self.credentials = credentials
        } catch let error as GnuTLSError {
            throw QUICError.credentials("\(error)")
        }
    }
}
