import CNgtcp2
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

/// A loaded `gnutls_certificate_credentials_t`. Immutable after creation and shared by
/// every connection of an endpoint (GnuTLS allows concurrent use of credentials).
public final class TLSCredentials: @unchecked Sendable {
    let handle: gnutls_certificate_credentials_t
    /// The parsed TLS priority string, shared by every session of the endpoint.
    let priority: gnutls_priority_t
    /// How many CA certificates the trust bundle held; an empty bundle is a configuration error.
    public let trustedCACount: Int

    public init(_ identity: TLSIdentity) throws {
        var cred: gnutls_certificate_credentials_t?
        try gnutlsCheck(gnutls_certificate_allocate_credentials(&cred), "allocating credentials")
        guard let cred else { throw QUICError.credentials("GnuTLS returned no credentials") }
        var priority: gnutls_priority_t?
        let priorityRC = ah_tls_priority_new(&priority)
        guard priorityRC == 0, let priority else {
            gnutls_certificate_free_credentials(cred)
            throw QUICError.credentials("TLS priorities: \(gnutlsErrorString(priorityRC))")
        }
        self.handle = cred
        self.priority = priority
        do {
            if let chainSource = identity.certificateChain, let keySource = identity.privateKey {
                let chain = try chainSource.load()
                let key = try keySource.load()
                try Self.withDatum(chain) { chainDatum in
                    try Self.withDatum(key) { keyDatum in
                        try gnutlsCheck(
                            gnutls_certificate_set_x509_key_mem2(cred, chainDatum, keyDatum, GNUTLS_X509_FMT_PEM, nil, 0),
                            "loading certificate and private key")
                    }
                }
            } else if identity.certificateChain != nil || identity.privateKey != nil {
                throw QUICError.credentials("a certificate needs its private key and vice versa")
            }
            if let trustSource = identity.trustBundle {
                let trust = try trustSource.load()
                let count = try Self.withDatum(trust) { datum in
                    gnutls_certificate_set_x509_trust_mem(cred, datum, GNUTLS_X509_FMT_PEM)
                }
                guard count > 0 else {
                    throw QUICError.credentials(count < 0 ? "loading trust bundle: \(gnutlsErrorString(count))" : "trust bundle holds no CA certificate")
                }
                self.trustedCACount = Int(count)
            } else {
                self.trustedCACount = 0
            }
        } catch {
            gnutls_certificate_free_credentials(cred)
            gnutls_priority_deinit(priority)
            throw error
        }
    }

    deinit {
        gnutls_certificate_free_credentials(handle)
        // Sessions still alive hold their own reference to the priority cache.
        gnutls_priority_deinit(priority)
    }

    private static func withDatum<R>(_ bytes: [UInt8], _ body: (UnsafePointer<gnutls_datum_t>) throws -> R) throws -> R {
        var copy = bytes
        return try copy.withUnsafeMutableBufferPointer { buffer in
            var datum = gnutls_datum_t(data: buffer.baseAddress, size: UInt32(buffer.count))
            return try body(&datum)
        }
    }
}

func gnutlsErrorString(_ code: Int32) -> String {
    String(cString: gnutls_strerror(code))
}

func gnutlsCheck(_ code: Int32, _ what: String) throws {
    if code < 0 { throw QUICError.credentials("\(what): \(gnutlsErrorString(code))") }
}
