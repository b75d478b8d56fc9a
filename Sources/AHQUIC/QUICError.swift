import CNgtcp2

/// Errors surfaced by the transport. Each carries enough text to act on at 3 a.m.
public enum QUICError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Certificates, keys or trust bundles could not be loaded.
    case credentials(String)
    /// ngtcp2 refused an operation; `code` is the NGTCP2_ERR_* value.
    case ngtcp2(String, code: Int32)
    /// The TLS handshake failed; `reason` is what our side saw (including policy refusals).
    case handshakeFailed(reason: String)
    /// The peer's certificate was fine but its SPIFFE ID is not allowed by our policy.
    case peerRefused(reason: String)
    /// The peer closed the connection; codes and reason as sent on the wire.
    case closedByPeer(CloseInfo)
    /// We closed the connection (locally requested or because of an error).
    case closedLocally(CloseInfo)
    /// No packet from the peer within the idle timeout.
    case idleTimeout
    /// The handshake did not complete in time.
    case handshakeTimeout
    /// The connection is gone; the operation could not run.
    case connectionClosed
    /// No more streams may be opened right now (peer's stream limit).
    case streamLimit
    /// A bad argument (address, option) given by the caller.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .credentials(let s): return "TLS credentials: \(s)"
        case .ngtcp2(let what, let code): return "\(what): \(String(cString: ngtcp2_strerror(code))) (\(code))"
        case .handshakeFailed(let r): return "handshake failed: \(r)"
        case .peerRefused(let r): return "peer refused: \(r)"
        case .closedByPeer(let info): return "closed by peer: \(info)"
        case .closedLocally(let info): return "closed locally: \(info)"
        case .idleTimeout: return "idle timeout: no packet from the peer"
        case .handshakeTimeout: return "handshake timed out"
        case .connectionClosed: return "connection is closed"
        case .streamLimit: return "peer's stream limit reached"
        case .invalidArgument(let s): return s
        }
    }
}

/// What a CONNECTION_CLOSE carried.
public struct CloseInfo: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable { case transport, application }
    public var kind: Kind
    public var code: UInt64
    public var reason: String

    public init(kind: Kind, code: UInt64, reason: String) {
        self.kind = kind
        self.code = code
        self.reason = reason
    }

    public var description: String {
        let k = kind == .application ? "application" : "transport"
        var s = "\(k) error 0x\(String(code, radix: 16))"
        if kind == .transport, code >= 0x100, code < 0x200 { s += " (\(tlsAlertName(UInt8(code - 0x100))))" }
        if !reason.isEmpty { s += ": \(reason)" }
        return s
    }
}

/// Stream-level errors delivered through `errorCaught` on a stream channel.
public enum QUICStreamError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The peer sent RESET_STREAM: it abandoned sending on this stream.
    case resetByPeer(applicationErrorCode: UInt64)
    /// The peer sent STOP_SENDING: it no longer reads; our writes are dropped.
    case stopSendingByPeer(applicationErrorCode: UInt64)
    /// The connection ended before the stream finished.
    case connectionClosed
    /// Writes after our side finished (FIN) or was reset.
    case outputClosed

    public var description: String {
        switch self {
        case .resetByPeer(let c): return "stream reset by peer (application error \(c))"
        case .stopSendingByPeer(let c): return "peer stopped reading the stream (application error \(c))"
        case .connectionClosed: return "connection closed before the stream finished"
        case .outputClosed: return "stream output already closed"
        }
    }
}
