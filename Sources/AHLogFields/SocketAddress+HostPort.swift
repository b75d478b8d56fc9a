import NIOCore

extension SocketAddress {
    /// `127.0.0.1:4433`, `[::1]:4433` or a socket path: what operators paste into `ss`,
    /// `curl` or a firewall rule. NIO's own description (`[IPv4]127.0.0.1/127.0.0.1:4433`)
    /// repeats the host and is not an address any tool accepts.
    public var hostPort: String {
        switch self {
        case .v4:
            return "\(ipAddress ?? "?"):\(port ?? 0)"
        case .v6:
            return "[\(ipAddress ?? "?")]:\(port ?? 0)"
        case .unixDomainSocket:
            return pathname ?? "unix"
        }
    }
}

extension Optional where Wrapped == SocketAddress {
    /// `hostPort`, or `-` when the address is unknown (a channel already closed).
    public var hostPort: String { self?.hostPort ?? "-" }
}
