/// What serves `GET /metrics` and counts the REST responses: the access point's Prometheus
/// registry (AHAccessPoint), kept behind this protocol so the HTTP server does not depend on
/// the metrics libraries.
public protocol MetricsSource: Sendable {
    /// The exposition as of now, with its media type.
    func scrape() async -> (contentType: String, body: [UInt8])
    /// One REST response went out on `route` (a fixed label, see `HTTPAPIRoutes.route(of:)`).
    func requestServed(route: String, status: Int)
}

extension HTTPAPIRoutes {
    func scrape() async -> HTTPAPIResponse {
        guard let metrics else { return .problem(.notFound("metrics are not served on this listener")) }
        let (contentType, body) = await metrics.scrape()
        return HTTPAPIResponse(status: .ok, headers: ["content-type": contentType, "cache-control": "no-store"], body: body)
    }
}

/// `ah serve --metrics-listen`: a listener that serves `GET /metrics` only, without a token
/// (an address the operator keeps to the scraper's network), and no CONNECT.
public struct MetricsOnlyResponder: HTTPResponder {
    public let metrics: any MetricsSource

    public init(metrics: any MetricsSource) { self.metrics = metrics }

    public var tunnels: (any TunnelIngress)? { nil }

    public func respond(to request: HTTPAPIRequest) async -> HTTPAPIResponse {
        let response: HTTPAPIResponse
        if request.path != "/metrics" {
            response = .problem(.notFound("this listener serves /metrics only"),
                                closeConnection: request.method == .CONNECT)
        } else if request.method != .GET {
            response = .problem(.methodNotAllowed("/metrics supports GET only"), headers: ["allow": "GET"])
        } else {
            let (contentType, body) = await metrics.scrape()
            response = HTTPAPIResponse(status: .ok, headers: ["content-type": contentType, "cache-control": "no-store"], body: body)
        }
        metrics.requestServed(route: request.path == "/metrics" ? "/metrics" : "unmatched", status: Int(response.status.code))
        return response
    }
}
