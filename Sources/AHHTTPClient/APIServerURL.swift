import Foundation

/// The `--remote-server` URL of an access point's HTTP listener, e.g. `http://127.0.0.1:8443`
/// or `https://ap.example.org:8443` (an optional path prefix is kept, for access points
/// behind a reverse proxy).
public struct APIServerURL: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: Int
    /// Prefix without a trailing slash ("" for none).
    public let basePath: String
    /// https: TLS (GnuTLS) with the server's certificate verified against its host name.
    public let useTLS: Bool

    public init(parsing text: String) throws(HTTPAPIClientError) {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw .invalidURL(text, reason: "expected http://HOST:PORT")
        }
        guard scheme == "http" || scheme == "https" else {
            throw .invalidURL(text, reason: "scheme '\(scheme)' is not http or https")
        }
        useTLS = scheme == "https"
        guard let rawHost = components.host, !rawHost.isEmpty else { throw .invalidURL(text, reason: "no host") }
        guard components.user == nil, components.password == nil else {
            throw .invalidURL(text, reason: "credentials in the URL are not supported; use --token")
        }
        guard components.query == nil, components.fragment == nil else {
            throw .invalidURL(text, reason: "no query or fragment expected")
        }
        let port = components.port ?? (useTLS ? 443 : 80)
        guard (1...65535).contains(port) else { throw .invalidURL(text, reason: "port \(port) is out of range") }
        // URLComponents keeps IPv6 brackets on some platforms; sockets want the bare address.
        host = rawHost.hasPrefix("[") && rawHost.hasSuffix("]") ? String(rawHost.dropFirst().dropLast()) : rawHost
        self.port = port
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        basePath = path
    }

    /// `Host` header value.
    public var authority: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public var description: String { "\(useTLS ? "https" : "http")://\(authority)\(basePath)" }
}
