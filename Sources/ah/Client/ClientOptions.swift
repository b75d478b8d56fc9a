import AHHTTPClient
import AHTLS
import ArgumentParser
import Foundation
import NIOCore

/// Options shared by the commands that talk to an access point's HTTP listener.
enum ClientOptions {
    static func server(_ text: String) throws -> APIServerURL {
        do { return try APIServerURL(parsing: text) } catch { throw ValidationError(error.description) }
    }

    /// The JWT from --token or --token-file (trimmed; a file must not be readable by others
    /// is not enforced, but an empty or multi-line one is refused).
    static func token(_ token: String?, file: String?) throws -> String {
        var value = token ?? ""
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw CLIError.usage("--token-file '\(file)' cannot be read")
            }
            value = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard !value.isEmpty, !value.contains(where: { $0.isWhitespace }) else {
            throw CLIError.usage(file.map { "--token-file '\($0)' does not hold one JWT" } ?? "--token must be a JWT without spaces")
        }
        return value
    }

    /// TLS setup for https:// servers (nil for http://): GnuTLS, the server's certificate
    /// verified against --ca-file (or the system trust) and the URL's host name.
    static func tls(for server: APIServerURL, caFile: String?) throws -> (@Sendable (Channel) throws -> Void)? {
        do { return try ClientTLS.setup(for: server, caFile: caFile) } catch {
            throw CLIError.usage("--\(error.description.replacingOccurrences(of: "ca_file", with: "ca-file"))")
        }
    }
}
