#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import AHSPIFFE
import Foundation
import X509

/// The work behind `ah debug dev-certs`: a CA plus one SVID per ID, written into one directory.
///
/// Kept here rather than in the CLI so that it is tested without spawning the binary; the
/// command only parses flags and prints the result.
public enum DevCerts {
    public static let caCertFileName = "ca.pem"
    public static let caKeyFileName = "ca-key.pem"
    /// Leaves must fit inside the CA's default lifetime.
    public static let maxDays = Int(Validity.caDefault / Validity.day)

    /// Bad input; the CLI turns it into exit code 2. The message names the offending value.
    public struct InputError: Error, CustomStringConvertible, Sendable {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// What was written, for the human and the `--json` output.
    public struct Result: Codable, Sendable {
        public struct Identity: Codable, Sendable {
            public var id: String
            public var certPath: String
            public var keyPath: String
            public var notAfter: Date
        }
        public var directory: String
        public var trustDomain: String
        public var caPath: String
        public var caKeyPath: String
        public var caPin: String
        /// True when an existing ca.pem/ca-key.pem pair was reused instead of a new CA created.
        public var caReused: Bool
        public var identities: [Identity]
    }

    /// The IDs `dev-certs` issues when none are given: an access point and one executor.
    public static func defaultIDs(trustDomain: String) throws -> [SPIFFEID] {
        [try .accessPoint(trustDomain: trustDomain), try .agent(trustDomain: trustDomain, name: "dev")]
    }

    /// Validates raw CLI input. Errors name the bad value.
    public static func validate(trustDomain: String, ids rawIDs: [String], days: Int) throws -> [SPIFFEID] {
        do {
            _ = try SPIFFEID(trustDomain: trustDomain, path: "")
        } catch {
            throw InputError("bad --trust-domain \"\(trustDomain)\": \(error.rule.rawValue)")
        }
        guard (1...maxDays).contains(days) else {
            throw InputError("bad --days \(days): must be between 1 and \(maxDays)")
        }
        var ids: [SPIFFEID] = []
        for raw in rawIDs {
            do {
                ids.append(try SPIFFEID(parsing: raw))
            } catch {
                throw InputError("bad --id \"\(raw)\": \(error.rule.rawValue)")
            }
        }
        if ids.isEmpty { ids = try defaultIDs(trustDomain: trustDomain) }
        // Every ID becomes two files named after its last segment; none may collide with
        // another ID's files or with the CA's.
        var owners: [String: String] = [caCertFileName: "the CA certificate", caKeyFileName: "the CA key"]
        for id in ids {
            guard id.trustDomain == trustDomain else {
                throw InputError("bad --id \"\(id)\": not in trust domain \(trustDomain) (set --trust-domain)")
            }
            guard let last = id.segments().last else {
                throw InputError("bad --id \"\(id)\": has no path, so no file name can be derived from it")
            }
            for file in files(forSegment: last) {
                if let owner = owners[file] {
                    throw InputError("bad --id \"\(id)\": its file \(file) would overwrite that of \(owner)")
                }
                owners[file] = id.description
            }
        }
        return ids
    }

    static func files(forSegment segment: String) -> [String] {
        [segment + ".pem", segment + "-key.pem"]
    }

    /// Creates `directory` (0700) if needed, reuses or creates the CA, and issues each SVID.
    public static func generate(
        directory: URL,
        trustDomain: String,
        ids: [SPIFFEID],
        days: Int,
        newCA: Bool = false,
        now: Date = Date()
    ) throws -> Result {
        // Re-check here too: `generate` is public and its file names depend on these rules.
        let ids = try validate(trustDomain: trustDomain, ids: ids.map(\.description), days: days)
        try makeDirectory(directory)
        let caURL = directory.appendingPathComponent(caCertFileName)
        let caKeyURL = directory.appendingPathComponent(caKeyFileName)
        let notBefore = now.addingTimeInterval(-Validity.backdate)
        let notAfter = now.addingTimeInterval(TimeInterval(days) * Validity.day)

        let (ca, reused) = try loadOrCreateCA(
            certURL: caURL, keyURL: caKeyURL, trustDomain: trustDomain, newCA: newCA, notBefore: notBefore, leafNotAfter: notAfter
        )
        if !reused {
            try PEMFile.writePrivateKey(ca.privateKey, to: caKeyURL)
            try PEMFile.writeCertificate(ca.certificate, to: caURL)
        }
        var identities: [Result.Identity] = []
        for id in ids {
            let files = try DevIdentity.write(
                ca: ca, id: id, in: directory, basename: id.segments().last ?? "",
                notBefore: notBefore, notAfter: notAfter, caFileName: caCertFileName
            )
            identities.append(.init(id: id.description, certPath: files.certPath, keyPath: files.keyPath, notAfter: notAfter))
        }
        return Result(
            directory: directory.path, trustDomain: trustDomain, caPath: caURL.path, caKeyPath: caKeyURL.path,
            caPin: ca.sha256Pin, caReused: reused, identities: identities
        )
    }

    /// Re-running dev-certs on the same directory keeps the CA, so certificates already handed
    /// out stay valid and the pin operators noted does not change.
    private static func loadOrCreateCA(
        certURL: URL, keyURL: URL, trustDomain: String, newCA: Bool, notBefore: Date, leafNotAfter: Date
    ) throws -> (CertificateAuthority, reused: Bool) {
        let fm = FileManager.default
        let haveCert = fm.fileExists(atPath: certURL.path)
        let haveKey = fm.fileExists(atPath: keyURL.path)
        if newCA || (!haveCert && !haveKey) {
            // The CA must outlive every leaf it signs, even with the longest --days.
            let lifetime = max(Validity.caDefault, leafNotAfter.timeIntervalSince(notBefore) + Validity.day)
            return (try CertificateAuthority.create(trustDomain: trustDomain, notBefore: notBefore, validFor: lifetime), false)
        }
        guard haveCert && haveKey else {
            let missing = haveCert ? keyURL.path : certURL.path
            throw InputError("incomplete CA in --out: \(missing) is missing (remove the other file or pass --new-ca)")
        }
        let ca = try CertificateAuthority(
            certificate: PEMFile.readCertificate(from: certURL),
            privateKey: PEMFile.readPrivateKey(from: keyURL)
        )
        if let caDomain = ca.trustDomain, caDomain != trustDomain {
            throw InputError("existing CA \(certURL.path) is for trust domain \(caDomain), not \(trustDomain) (pass --new-ca to replace it)")
        }
        guard leafNotAfter <= ca.certificate.notValidAfter else {
            throw InputError("existing CA \(certURL.path) expires \(ca.certificate.notValidAfter), before the requested certificates would (lower --days or pass --new-ca)")
        }
        return (ca, true)
    }

    private static func makeDirectory(_ url: URL) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw InputError("bad --out \"\(url.path)\": exists and is not a directory") }
            return
        }
        // Missing parents get ordinary permissions; the directory itself is 0700 from creation
        // (mkdir's mode, then chmod in case the umask removed owner bits), as it holds keys.
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        guard mkdir(url.path, 0o700) == 0 || errno == EEXIST, chmod(url.path, 0o700) == 0 else {
            throw IdentityError("cannot create \(url.path): \(String(cString: strerror(errno)))")
        }
    }
}
