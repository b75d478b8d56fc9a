// Addresses for tests: parsing "HOST:PORT" / "listening on HOST:PORT", and asking the
// kernel for a free port when a peer cannot bind port 0 itself.

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A host and port as printed and accepted by `ah` (`127.0.0.1:4433`, `[::1]:4433`).
public struct HostAndPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT` or `[IPv6]:PORT`; nil if malformed.
    public init?(parsing text: String) {
        let text = text.trimmingCharacters(in: .whitespaces)
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        guard let port = UInt16(text[text.index(after: colon)...]), !host.isEmpty else { return nil }
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else { return nil }
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") || host.contains("]") {
            return nil  // IPv6 without brackets is ambiguous
        }
        self.init(host: host, port: port)
    }

    /// Parses the announcement servers print once bound, e.g. `listening on 127.0.0.1:4433`.
    public init?(announcement line: String, prefix: String = "listening on ") {
        guard line.hasPrefix(prefix) else { return nil }
        self.init(parsing: String(line.dropFirst(prefix.count)))
    }

    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

public enum Ports {
    public enum Transport: Sendable {
        case udp
        case tcp
    }

    /// Binds port 0 on `host` (an IPv4 literal), reads the port the kernel chose and
    /// closes the socket. Prefer letting the server bind port 0 and announce its
    /// address (there is a window in which another process can take this port); this
    /// is for peers such as ngtcp2's gtlsserver that need a number up front.
    public static func freePort(_ transport: Transport = .udp, host: String = "127.0.0.1") throws -> UInt16 {
        #if canImport(Darwin)
        let type = transport == .udp ? SOCK_DGRAM : SOCK_STREAM
        #else
        let type = Int32(transport == .udp ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue)
        #endif
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { throw PortError.system("socket", errno) }
        defer { close(fd) }

        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            throw PortError.notIPv4(host)
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw PortError.system("bind", errno) }

        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw PortError.system("getsockname", errno) }
        return UInt16(bigEndian: address.sin_port)
    }

    public enum PortError: Error, CustomStringConvertible {
        case system(String, Int32)
        case notIPv4(String)

        public var description: String {
            switch self {
            case .system(let call, let code): return "\(call) failed: \(String(cString: strerror(code)))"
            case .notIPv4(let host): return "not an IPv4 address: \(host)"
            }
        }
    }
}
