import AHHTTPClient
import AHTunnel
import Foundation
import NIOCore
import NIOPosix

/// A byte path to a follower's sshd, as a connected socket descriptor that libssh2 can own:
/// a direct TCP connection, or one end of a socketpair whose other end is relayed (in this
/// process, on a NIO loop) into an HTTP CONNECT tunnel through the follower's access point.
/// The same SSH code then runs over either, and over https:// access points too.
public struct DialedPath: Sendable {
    public let fd: Int32
    public let report: PathReport
    /// The relay's channels (CONNECT path only): closed with the session.
    let relay: [any Channel]

    public func closeRelay() {
        for channel in relay { channel.close(promise: nil) }
    }
}

public enum DialError: Error, CustomStringConvertible, Sendable {
    case direct(target: String, reason: String)
    case accessPoint(server: String, reason: String, status: Int?)

    public var description: String {
        switch self {
        case .direct(let target, let reason): return "direct TCP to \(target) failed: \(reason)"
        case .accessPoint(let server, let reason, let status):
            return "CONNECT through \(server) failed\(status.map { " (HTTP \($0))" } ?? ""): \(reason)"
        }
    }
}

public enum FollowerDialer {
    /// TCP to host:port within `timeout`; the descriptor is blocking-agnostic (libssh2 sets
    /// its own mode). RTT is the connect time.
    public static func direct(host: String, port: Int, timeout: Duration) async throws -> DialedPath {
        let target = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let started = ContinuousClock.now
        let fd = try await Task.detached {
            try connectTCP(host: host, port: port, timeout: timeout)
        }.value
        let rtt = ContinuousClock.now - started
        return DialedPath(fd: fd, report: PathReport(method: .direct, target: target, rttMs: rtt.milliseconds), relay: [])
    }

    /// CONNECT `executor:22` through the access point, relayed onto a socketpair.
    public static func accessPoint(client: ConnectClient, executor: String, token: String) async throws -> DialedPath {
        let started = ContinuousClock.now
        let tunnel: Channel
        do {
            tunnel = try await client.open(executor: executor, port: 22, token: token)
        } catch let error as ConnectClientError {
            var status: Int?
            if case .refused(let code, _) = error { status = code }
            throw DialError.accessPoint(server: client.server.description, reason: error.description, status: status)
        }
        let rtt = ContinuousClock.now - started
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            tunnel.close(promise: nil)
            throw DialError.accessPoint(server: client.server.description, reason: "socketpair: \(String(cString: strerror(errno)))", status: nil)
        }
        let local: Channel
        do {
            local = try await ClientBootstrap(group: tunnel.eventLoop)
                .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                .channelInitializer { channel in
                    // libssh2 starts writing (its banner) as soon as we return, which can be
                    // before Tunnel.join has attached its handlers on a busy loop. Without a
                    // prelude those first bytes reached the pipeline's tail and were dropped:
                    // sshd then saw the KEXINIT first ("banner line contains invalid
                    // characters") — seen on cold starts with 8 followers connecting at once.
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(TunnelPrelude()) }
                }
                .withConnectedSocket(pair[0]).get()
        } catch {
            close(pair[0])
            close(pair[1])
            tunnel.close(promise: nil)
            throw DialError.accessPoint(server: client.server.description, reason: "cannot relay the tunnel: \(error)", status: nil)
        }
        _ = Tunnel.join(local, tunnel)
        let report = PathReport(method: .accessPoint, target: "\(executor):22", rttMs: rtt.milliseconds,
                                relay: client.server.description)
        return DialedPath(fd: pair[1], report: report, relay: [local, tunnel])
    }

    /// A blocking connect with a deadline (poll on a non-blocking socket), trying each
    /// address getaddrinfo returns.
    static func connectTCP(host: String, port: Int, timeout: Duration) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw DialError.direct(target: "\(host):\(port)", reason: "cannot resolve '\(host)': \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue),
                            info.pointee.ai_protocol)
            guard fd >= 0 else { lastError = String(cString: strerror(errno)); continue }
            if connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 || errno == EINPROGRESS {
                var pollFD = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let millis = Int32(min(timeout.milliseconds.rounded(.up), Double(Int32.max)))
                let ready = poll(&pollFD, 1, max(millis, 1))
                var soError: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
                if ready == 1, soError == 0 {
                    var one: Int32 = 1
                    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                    return fd
                }
                lastError = ready == 0 ? "no answer within \(timeout)" : String(cString: strerror(soError == 0 ? errno : soError))
            } else {
                lastError = String(cString: strerror(errno))
            }
            close(fd)
        }
        throw DialError.direct(target: "\(host):\(port)", reason: lastError)
    }
}

extension Duration {
    /// Whole and fractional milliseconds.
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
