/// What answers the requests of a listener: `HTTPAPIRoutes` in `ah serve`; tests plug in
/// their own to drive the connection handling (streams, slow answers) with real sockets.
public protocol HTTPResponder: Sendable {
    /// Where CONNECT requests go; nil: the listener refuses them (405).
    var tunnels: (any TunnelIngress)? { get }
    func respond(to request: HTTPAPIRequest) async -> HTTPAPIResponse
}

extension HTTPAPIRoutes: HTTPResponder {}
