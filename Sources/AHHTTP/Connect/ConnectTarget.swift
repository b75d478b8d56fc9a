/// The target of `CONNECT NAME:PORT`: an executor name (any domain suffix after the first dot
/// is ignored, so `linux-1.ah.example.org:22` works with ssh configs that add a domain) and
/// a port.
public struct ConnectTarget: Sendable, Equatable, CustomStringConvertible {
    public let executor: String
    public let port: Int

    public init(executor: String, port: Int) {
        self.executor = executor
        self.port = port
    }

    /// Parses the request target of a CONNECT (RFC 9110 authority-form: host ":" port).
    /// Returns a one-line reason for a 400 otherwise.
    public static func parse(_ authority: String) -> Result<ConnectTarget, ConnectTargetError> {
        guard authority.utf8.count <= 300 else { return .failure(.init("target longer than 300 bytes")) }
        guard !authority.hasPrefix("[") else { return .failure(.init("'\(authority)' is an IP literal, not an executor name")) }
        guard let colon = authority.lastIndex(of: ":") else {
            return .failure(.init("'\(authority)' must be NAME:PORT"))
        }
        let host = authority[..<colon]
        let portText = authority[authority.index(after: colon)...]
        guard let port = Int(portText), (1...65535).contains(port), portText.allSatisfy(\.isASCII) else {
            return .failure(.init("port '\(portText)' in '\(authority)' is not 1-65535"))
        }
        let name = host.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard !name.isEmpty, name.utf8.count <= 63,
              name.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) || $0 == 0x2d || $0 == 0x5f })
        else {
            return .failure(.init("'\(host)' does not start with an executor name (letters, digits, '-', '_')"))
        }
        return .success(ConnectTarget(executor: name, port: port))
    }

    public var description: String { "\(executor):\(port)" }
}

public struct ConnectTargetError: Error, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
