extension QUICError {
    /// The kind of failure as one short word, without the free text: a metric label (a label
    /// value must come from a small fixed set, or every distinct message makes a new series).
    public var metricsReason: String {
        switch self {
        case .credentials: return "credentials"
        case .ngtcp2: return "transport"
        case .handshakeFailed: return "handshake_failed"
        case .peerRefused: return "peer_refused"
        case .closedByPeer: return "closed_by_peer"
        case .closedLocally: return "closed_locally"
        case .idleTimeout: return "idle_timeout"
        case .handshakeTimeout: return "handshake_timeout"
        case .connectionClosed: return "connection_closed"
        case .streamLimit: return "stream_limit"
        case .invalidArgument: return "invalid_argument"
        }
    }
}
