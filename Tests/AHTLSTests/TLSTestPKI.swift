// Certificates for the TLS tests, made at test time with GnuTLS's `certtool`: a root CA, a
// server leaf for `localhost` / 127.0.0.1, a leaf behind an intermediate (chain file), and
// a look-alike leaf from a CA nobody trusts.

import AHTestSupport
import Foundation

struct TLSTestPKI {
    enum PKIError: Error, CustomStringConvertible {
        case certtoolMissing
        case certtoolFailed(String)

        var description: String {
            switch self {
            case .certtoolMissing: return "certtool not found on PATH (Debian: apt-get install gnutls-bin)"
            case .certtoolFailed(let transcript): return "certtool failed:\n\(transcript)"
            }
        }
    }

    let directory: TemporaryDirectory
    /// The trusted root.
    let caPath: String
    /// Leaf for DNS `localhost` and IP 127.0.0.1, issued by the root.
    let serverCertPath: String
    let serverKeyPath: String
    /// Leaf (same names) issued by an intermediate; the file holds leaf + intermediate.
    let chainPath: String
    let chainKeyPath: String
    /// Leaf (same names) issued by a different, untrusted root.
    let otherCAServerCertPath: String
    let otherCAServerKeyPath: String

    static func make() async throws -> TLSTestPKI {
        guard let certtool = Executables.find("certtool", alsoIn: ["/usr/bin"]) else {
            throw PKIError.certtoolMissing
        }
        let dir = try TemporaryDirectory(prefix: "ah-tls")
        func path(_ name: String) -> String { dir.file(name).path }
        func run(_ arguments: [String]) async throws {
            let result = try await ProcessRunner.run(certtool, arguments, timeout: 60)
            guard result.exit.succeeded else { throw PKIError.certtoolFailed(result.transcript) }
        }
        func key(_ name: String) async throws {
            try await run(["--generate-privkey", "--key-type=ecdsa", "--outfile", path(name)])
        }
        func template(_ name: String, _ lines: [String]) throws {
            try (lines.joined(separator: "\n") + "\n").write(toFile: path(name), atomically: true, encoding: .utf8)
        }
        func selfSigned(_ name: String, cn: String) async throws {
            try template(name + ".tmpl", ["cn = \"\(cn)\"", "ca", "cert_signing_key", "expiration_days = 2"])
            try await key(name + "-key.pem")
            try await run(["--generate-self-signed", "--load-privkey", path(name + "-key.pem"),
                           "--template", path(name + ".tmpl"), "--outfile", path(name + ".pem")])
        }
        func issue(_ name: String, template lines: [String], by issuer: String) async throws {
            try template(name + ".tmpl", lines)
            try await key(name + "-key.pem")
            try await run(["--generate-certificate", "--load-privkey", path(name + "-key.pem"),
                           "--load-ca-certificate", path(issuer + ".pem"),
                           "--load-ca-privkey", path(issuer + "-key.pem"),
                           "--template", path(name + ".tmpl"), "--outfile", path(name + ".pem")])
        }
        let serverTemplate = [
            "cn = \"localhost\"", "dns_name = \"localhost\"", "ip_address = \"127.0.0.1\"",
            "tls_www_server", "signing_key", "expiration_days = 2",
        ]

        try await selfSigned("ca", cn: "AH TLS Test Root")
        try await selfSigned("other-ca", cn: "AH TLS Untrusted Root")
        try await issue("server", template: serverTemplate, by: "ca")
        try await issue("other-server", template: serverTemplate, by: "other-ca")
        try await issue("intermediate", template: ["cn = \"AH TLS Test Intermediate\"", "ca", "cert_signing_key",
                                                   "expiration_days = 2"], by: "ca")
        try await issue("chained", template: serverTemplate, by: "intermediate")
        let chain = try String(contentsOfFile: path("chained.pem"), encoding: .utf8)
            + String(contentsOfFile: path("intermediate.pem"), encoding: .utf8)
        try chain.write(toFile: path("chain.pem"), atomically: true, encoding: .utf8)

        return TLSTestPKI(
            directory: dir,
            caPath: path("ca.pem"),
            serverCertPath: path("server.pem"), serverKeyPath: path("server-key.pem"),
            chainPath: path("chain.pem"), chainKeyPath: path("chained-key.pem"),
            otherCAServerCertPath: path("other-server.pem"), otherCAServerKeyPath: path("other-server-key.pem")
        )
    }
}
