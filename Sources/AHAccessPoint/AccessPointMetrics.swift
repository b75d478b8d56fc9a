import AHAPI
import AHHTTPServer
import AHQUIC
import CoreMetrics
import Prometheus

/// The access point's Prometheus metrics (`GET /metrics`), names and meaning in
/// docs/operations.md.
///
/// One registry per access point, passed in, never swift-metrics' global `MetricsSystem`:
/// that can be bootstrapped once per process, and the tests run many access points in one
/// process. The metrics are swift-metrics objects (`Counter`, `Meter`) made with this
/// registry's `PrometheusMetricsFactory`; the registry writes the text exposition.
///
/// Other modules' hooks (the events ingestion and SSE, owned elsewhere) use the public
/// properties below: `eventsIngested.increment(by:)` per stored event, and
/// `sseConsumers.increment()` / `.decrement()` when an SSE consumer attaches / goes away.
public final class AccessPointMetrics: Sendable {
    /// The metric names, for hooks and tests.
    public enum Name {
        public static let executors = "ah_executors"
        public static let quicConnections = "ah_quic_connections"
        public static let quicHandshakes = "ah_quic_handshakes_total"
        public static let quicHandshakeFailures = "ah_quic_handshake_failures_total"
        public static let tunnelsOpen = "ah_tunnels_open"
        public static let tunnels = "ah_tunnels_total"
        public static let tunnelsRefused = "ah_tunnels_refused_total"
        public static let tunnelBytes = "ah_tunnel_bytes_total"
        public static let enrollments = "ah_enrollments_total"
        public static let eventsIngested = "ah_events_ingested_total"
        public static let sseConsumers = "ah_sse_consumers"
        public static let httpRequests = "ah_http_requests_total"
    }

    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    /// Events stored by the access point (each (session, seq) counted once, when stored).
    public let eventsIngested: CoreMetrics.Counter
    /// SSE consumers attached right now.
    public let sseConsumers: Meter

    let quicConnections: Meter
    let quicHandshakes: CoreMetrics.Counter
    let tunnelsOpen: Meter
    let tunnelsOpened: CoreMetrics.Counter
    let tunnelBytesUp: CoreMetrics.Counter
    let tunnelBytesDown: CoreMetrics.Counter
    let executorsByState: [ExecutorState: Meter]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        let factory = PrometheusMetricsFactory(registry: registry)
        self.factory = factory
        eventsIngested = CoreMetrics.Counter(label: Name.eventsIngested, factory: factory)
        sseConsumers = Meter(label: Name.sseConsumers, factory: factory)
        quicConnections = Meter(label: Name.quicConnections, factory: factory)
        quicHandshakes = CoreMetrics.Counter(label: Name.quicHandshakes, factory: factory)
        tunnelsOpen = Meter(label: Name.tunnelsOpen, factory: factory)
        tunnelsOpened = CoreMetrics.Counter(label: Name.tunnels, factory: factory)
        tunnelBytesUp = CoreMetrics.Counter(label: Name.tunnelBytes, dimensions: [("direction", "up")], factory: factory)
        tunnelBytesDown = CoreMetrics.Counter(label: Name.tunnelBytes, dimensions: [("direction", "down")], factory: factory)
        var byState: [ExecutorState: Meter] = [:]
        for state in ExecutorState.allCases {
            byState[state] = Meter(label: Name.executors, dimensions: [("state", state.rawValue)], factory: factory)
        }
        executorsByState = byState
        // Families with labels appear once a label value is used: start the ones a dashboard
        // expects at zero.
        for result in ["ok", "refused"] { enrollment(result).increment(by: 0) }
    }

    // MARK: Hooks

    /// A labelled counter of this registry (the registry hands out the same series for the
    /// same name and labels, so this is cheap to call per event).
    private func counter(_ name: String, _ dimensions: [(String, String)]) -> CoreMetrics.Counter {
        CoreMetrics.Counter(label: name, dimensions: dimensions, factory: factory)
    }

    private func enrollment(_ result: String) -> CoreMetrics.Counter {
        counter(Name.enrollments, [("result", result)])
    }

    func enrolled(ok: Bool) { enrollment(ok ? "ok" : "refused").increment() }

    /// A QUIC server event: mutual-TLS handshakes, their failures by reason, open connections
    /// of executors (enrollment connections carry no peer identity and are not counted).
    func record(_ event: QUICServerEvent) {
        switch event {
        case .connected:
            quicHandshakes.increment()
            quicConnections.increment()
        case .refused(let reason, _):
            counter(Name.quicHandshakeFailures, [("reason", reason.metricsReason)]).increment()
        case .closed(let peer, _):
            if peer != nil { quicConnections.decrement() }
        }
    }

    func tunnelOpened() {
        tunnelsOpened.increment()
        tunnelsOpen.increment()
    }

    func tunnelEnded(bytesUp: Int, bytesDown: Int) {
        tunnelsOpen.decrement()
        tunnelBytesUp.increment(by: bytesUp)
        tunnelBytesDown.increment(by: bytesDown)
    }

    /// A CONNECT refused with `status` (400, 403, 404, 407, 410, 502, 503, 504).
    func tunnelRefused(status: Int) {
        counter(Name.tunnelsRefused, [("status", String(status))]).increment()
    }

    /// A REST response. `route` is one of a fixed set (the endpoint's path pattern, or
    /// `unmatched`), never the raw path: label values must stay few.
    public func requestServed(route: String, status: Int) {
        counter(Name.httpRequests, [("route", route), ("status", String(status))]).increment()
    }

    /// Sets the executors-by-state gauges from a listing (done at each scrape: the registry
    /// is the truth, and counting transitions would drift across restarts).
    func setExecutors(_ executors: [ExecutorView]) {
        var counts: [ExecutorState: Int] = [:]
        for executor in executors { counts[executor.state, default: 0] += 1 }
        for (state, meter) in executorsByState { meter.set(counts[state] ?? 0) }
    }

    /// The Prometheus text exposition (format 0.0.4).
    public func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}

/// `GET /metrics` of one access point: refreshes the gauges that are read from the live
/// registry (executors by state), then writes the exposition.
struct AccessPointMetricsSource: MetricsSource {
    let metrics: AccessPointMetrics
    let executors: any ExecutorDirectory

    func scrape() async -> (contentType: String, body: [UInt8]) {
        // A registry that cannot be listed leaves the gauges at their last value; the rest of
        // the exposition is still worth serving.
        if let list = try? await executors.executors() { metrics.setExecutors(list) }
        return (AccessPointMetrics.contentType, metrics.exposition())
    }

    func requestServed(route: String, status: Int) {
        metrics.requestServed(route: route, status: status)
    }
}
