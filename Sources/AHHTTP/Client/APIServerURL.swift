import Foundation

/// The `--remote-server` URL of an access point's HTTP listener, e.g. `http://127.0.0.1:8443`
/// (an optional path prefix is kept, for access points behind a reverse proxy).
public struct APIServerURL: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: Int
    /// Prefix without a trailing slash ("" for none).
    public let basePath: String

    public init(parsing text: String) throws(HTTPAPIClientError) {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw .invalidURL(text, reason: "expected http://HOST:PORT")
        }
        guard scheme == "http" else {
            let reason = scheme == "https" ? "https is not supported yet; use http://" : "scheme '\(scheme)' is not http"
            throw .invalidURL(text, reason: reason)
        }
        guard let rawHost = components.host, !rawHost.isEmpty else { throw .invalidURL(text, reason: "no host") }
        guard components.user == nil, components.password == nil else {
            throw .invalidURL(text, reason: "credentials in the URL are not supported; use --token")
        }
        guard components.query == nil, components.fragment == nil else {
            throw .invalidURL(text, reason: "no query or fragment expected")
        }
        let port = components.port ?? 80
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

    public var description: String { "http://\(authority)\(basePath)" }
}
