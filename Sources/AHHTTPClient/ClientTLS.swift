import AHTLS
import NIOCore

/// TLS for the clients of an https:// access point: GnuTLS, the server's certificate
/// verified against `caFile` (or the system trust) and the URL's host name. Shared by the
/// CLI commands and the leader service.
public enum ClientTLS {
    public struct SetupError: Error, CustomStringConvertible {
        public let description: String
    }

    /// nil for http:// servers; else what `HTTPAPIClient.tls` / `ConnectClient.tls` take.
    public static func setup(for server: APIServerURL, caFile: String?) throws(SetupError) -> (@Sendable (Channel) throws -> Void)? {
        guard server.useTLS else { return nil }
        let context: TLSClientContext
        do { context = try TLSClientContext(caFile: caFile) } catch {
            throw SetupError(description: "ca_file '\(caFile ?? "system trust")': \(error)")
        }
        let host = server.host
        return { channel in
            try channel.pipeline.syncOperations.addHandler(GnuTLSHandler.client(context: context, serverName: host), position: .first)
        }
    }
}
