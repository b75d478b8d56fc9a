import AHControl

/// Which local TCP destinations the access point may ask this executor to connect to.
/// Port 22 always means the sshd at `--ssh-dst` (whatever port it really listens on), so a
/// client never needs to know how an executor's sshd is set up. Other ports only when listed
/// with `--allow-tcp HOST:PORT`; nothing else, ever: the access point is trusted to
/// authenticate users, not to reach arbitrary hosts from inside the executor's network.
public struct TunnelPolicy: Sendable, Equatable {
    public struct Destination: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    public var sshEnabled: Bool
    public var sshDestination: Destination
    /// Extra destinations, at most one per port (the port is what a CONNECT names).
    public var allowed: [Destination]

    public init(sshEnabled: Bool = true, sshDestination: Destination = Destination(host: "127.0.0.1", port: 22),
                allowed: [Destination] = []) {
        self.sshEnabled = sshEnabled
        self.sshDestination = sshDestination
        self.allowed = allowed
    }

    /// Where a tunnel to `port` goes, or why it may not.
    public func destination(forPort port: Int) -> Result<Destination, OpenTCPResultRefusal> {
        if port == 22 {
            guard sshEnabled else {
                return .failure(.init(.sshDisabled, "ssh is disabled on this executor (--ssh disabled)"))
            }
            return .success(sshDestination)
        }
        if let match = allowed.first(where: { $0.port == port }) { return .success(match) }
        return .failure(.init(.notAllowed, "port \(port) is not allow-listed on this executor (only 22 and --allow-tcp)"))
    }

    /// Ports besides 22 that are open for tunnels (reported in Hello).
    public var allowedPorts: [Int] { allowed.map(\.port).sorted() }
}

/// A refusal with its reason, as sent back in `OpenTCPResult`.
public struct OpenTCPResultRefusal: Error, Sendable, Equatable {
    public var code: OpenTCPResult.Refusal
    public var message: String

    public init(_ code: OpenTCPResult.Refusal, _ message: String) {
        self.code = code
        self.message = message
    }
}
