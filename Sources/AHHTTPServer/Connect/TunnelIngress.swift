import AHAPI
import AHTunnel
import NIOCore
import NIOHTTP1

/// What the HTTP listener needs from whoever can reach executors: decide a CONNECT request
/// and, if allowed, provide the far side of the tunnel. The access point implements it
/// (token, ACL, registry, a QUIC stream to the executor); the HTTP layer only speaks HTTP and
/// joins the bytes.
public protocol TunnelIngress: Sendable {
    func open(_ request: ConnectRequest) async -> ConnectOutcome
    /// A CONNECT the listener refused with 400 itself (malformed target, IP literal, bad
    /// name, too many bytes before the tunnel), before any token was looked at: for the audit,
    /// like the refusals `open` decides. Called once per refused request.
    func refusedAsBadRequest(_ refusal: ConnectBadRequest) async
}

public struct ConnectRequest: Sendable {
    public let target: ConnectTarget
    /// The `Proxy-Authorization` header value, if any (never logged).
    public let proxyAuthorization: String?
    public let remoteAddress: SocketAddress?

    public init(target: ConnectTarget, proxyAuthorization: String?, remoteAddress: SocketAddress?) {
        self.target = target
        self.proxyAuthorization = proxyAuthorization
        self.remoteAddress = remoteAddress
    }
}

/// A CONNECT answered 400 by the listener. The subject is unknown (the token is not checked
/// for a request that cannot be served anyway).
public struct ConnectBadRequest: Sendable {
    /// The executor name as the client gave it (first label of the target, unvalidated),
    /// at most 64 characters.
    public let givenName: String
    /// The port if it parsed.
    public let port: Int?
    public let remoteAddress: SocketAddress?
    /// The reason sent to the client.
    public let detail: String

    public init(givenName: String, port: Int?, remoteAddress: SocketAddress?, detail: String) {
        self.givenName = String(givenName.prefix(64))
        self.port = port
        self.remoteAddress = remoteAddress
        self.detail = detail
    }
}

public enum ConnectOutcome: Sendable {
    /// Answer with this response and close.
    case refused(HTTPAPIResponse)
    case accepted(AcceptedTunnel)
}

/// The far side of an allowed tunnel.
public struct AcceptedTunnel: Sendable {
    /// Ready to be joined (bytes it already received sit in a `TunnelPrelude`).
    public let channel: Channel
    /// Called once when the tunnel has ended, with what it carried (forward = client → executor).
    public let finished: @Sendable (TunnelTally.Summary) -> Void
    /// Called if the client went away before the tunnel could be joined.
    public let abandoned: @Sendable () -> Void

    public init(channel: Channel, finished: @escaping @Sendable (TunnelTally.Summary) -> Void,
                abandoned: @escaping @Sendable () -> Void) {
        self.channel = channel
        self.finished = finished
        self.abandoned = abandoned
    }
}
