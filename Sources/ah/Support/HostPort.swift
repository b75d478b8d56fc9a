import ArgumentParser

/// `HOST:PORT` or `[IPv6]:PORT`, validated up front so a typo is exit 2 naming the value.
struct HostPort: ExpressibleByArgument, CustomStringConvertible, Sendable {
    let host: String
    let port: Int

    init?(argument: String) {
        guard let parsed = try? HostPort.parse(argument) else { return nil }
        self = parsed
    }

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    static func parse(_ text: String) throws -> HostPort {
        var hostPart: Substring
        var portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw ValidationError("'\(text)' is not HOST:PORT")
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw ValidationError("'\(text)' is not HOST:PORT") }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard !hostPart.isEmpty, let port = Int(portPart), (0...65535).contains(port) else {
            throw ValidationError("'\(text)' is not HOST:PORT with a port from 0 to 65535")
        }
        return HostPort(host: String(hostPart), port: port)
    }

    /// An access point's QUIC address, `quic://HOST:PORT` (the scheme may be left out);
    /// anything else is bad input naming the value.
    static func quicRemote(_ text: String, flag: String = "--remote-server") throws -> HostPort {
        var rest = text
        if rest.hasPrefix("quic://") {
            rest.removeFirst(7)
        } else if let scheme = rest.range(of: "://") {
            // http(s):// is the access point's HTTP listener, not its QUIC port: a usage
            // error to name, not an unreachable host called "http".
            throw ValidationError("\(flag) '\(text)' uses \(rest[..<scheme.lowerBound])://; executors connect over QUIC: quic://HOST:PORT (the access point's --quic-listen)")
        }
        guard let parsed = try? HostPort.parse(rest), parsed.port > 0, !parsed.host.contains("/") else {
            throw ValidationError("\(flag) '\(text)' is not quic://HOST:PORT")
        }
        return parsed
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
