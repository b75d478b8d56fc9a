import AHSPIFFE

/// The target of `CONNECT NAME:PORT`: an executor name (any domain suffix after the first dot
/// is ignored, so `linux-1.ah.example.org:22` works with ssh configs that add a domain) and
/// a port. The name follows the one executor-name grammar (`ExecutorName`); `ah connect`
/// checks its argument with the same parser the access point uses.
public struct ConnectTarget: Sendable, Equatable, CustomStringConvertible {
    public let executor: String
    public let port: Int

    public init(executor: String, port: Int) {
        self.executor = executor
        self.port = port
    }

    /// Longest target looked at; longer ones are refused without being parsed.
    public static let maxLength = 300

    /// Parses the request target of a CONNECT (RFC 9110 authority-form: host ":" port).
    /// Returns a one-line reason for a 400 otherwise.
    public static func parse(_ authority: String) -> Result<ConnectTarget, ConnectTargetError> {
        guard authority.utf8.count <= maxLength else {
            return .failure(.init("target longer than \(maxLength) bytes", authority: authority))
        }
        guard !authority.hasPrefix("[") else {
            return .failure(.init("'\(authority)' is an IP literal, not an executor name", authority: authority))
        }
        guard let colon = authority.lastIndex(of: ":") else {
            return .failure(.init("'\(authority)' must be NAME:PORT", authority: authority))
        }
        let host = authority[..<colon]
        let portText = authority[authority.index(after: colon)...]
        guard portText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let port = Int(portText), (1...65535).contains(port) else {
            return .failure(.init("port '\(portText)' in '\(authority)' is not 1-65535", authority: authority))
        }
        // An unbracketed IPv6 address ("::1:22") or a dotted IPv4 address ("127.0.0.1:22"):
        // the access point reaches executors by name only, never an address.
        if host.contains(":") || isDottedNumeric(host) {
            return .failure(.init("'\(host)' is an IP literal, not an executor name", authority: authority))
        }
        let name = String(host.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        if let problem = ExecutorName.problem(name) {
            return .failure(.init("'\(host)' does not start with a valid executor name: \(problem)", authority: authority))
        }
        return .success(ConnectTarget(executor: name, port: port))
    }

    /// Two or more labels, all digits: what `inet_aton` would take for an IPv4 address. A
    /// single all-digit label stays a name (`CONNECT 42:22` reaches executor `42`).
    private static func isDottedNumeric(_ host: Substring) -> Bool {
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= 2 && labels.allSatisfy { !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
    }

    public var description: String { "\(executor):\(port)" }
}

public struct ConnectTargetError: Error, Equatable, CustomStringConvertible {
    public let description: String
    /// What the client named, for the audit log: the host's first label as given (not
    /// validated), at most `ExecutorName.maxLength + 1` characters so a row stays small.
    public let givenName: String
    /// The port if it parsed, else nil.
    public let port: Int?

    init(_ description: String, authority: String) {
        self.description = description
        let colon = authority.lastIndex(of: ":")
        let host = colon.map { authority[..<$0] } ?? Substring(authority)
        let first = host.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        givenName = String(first.prefix(ExecutorName.maxLength + 1))
        port = colon.flatMap { Int(authority[authority.index(after: $0)...]) }.flatMap { (1...65535).contains($0) ? $0 : nil }
    }
}
