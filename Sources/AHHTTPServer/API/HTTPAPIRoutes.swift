import AHLogFields
import AHAPI
import AHAuth
import Foundation
import Logging
import NIOHTTP1

/// The REST API on `--http-listen`: maps a complete request to a response. No I/O here, so the
/// routing and authorization rules can be tested without sockets.
///
/// - `GET /api/v1/readyz` needs no token: load balancers and orchestrators probe it and cannot
///   hold a user JWT, and it reveals nothing beyond "this process answers".
/// - `GET /api/v1/executors` needs a token with role ≥ viewer.
/// - `GET /api/v1/tunnels` (the tunnel audit, paged) needs role ≥ operator.
/// - `GET /metrics` (Prometheus text) needs role ≥ viewer; served only when `metrics` is set
///   (`ah serve --metrics-listen` serves it without a token on a separate address instead).
/// - `CONNECT NAME:PORT` goes to `tunnels` (the connection handler takes it before it gets
///   here); without an ingress it is refused with 405.
public struct HTTPAPIRoutes: Sendable {
    public let authority: UserTokenAuthority
    /// Who verifies bearer tokens: the authority's own, and an external OIDC issuer if configured.
    public let verifier: any UserTokenVerifying
    public let executors: any ExecutorDirectory
    /// Where CONNECT requests go; nil: this listener serves the REST API only.
    public let tunnels: (any TunnelIngress)?
    /// False while the access point is starting or draining: readyz answers 503 then.
    public let readiness: @Sendable () async -> Bool
    public let logger: Logger
    /// Counts every response and serves `GET /metrics`; nil: no metrics.
    public var metrics: (any MetricsSource)?
    /// Serves `GET /api/v1/tunnels`; nil: 404.
    public var tunnelAudit: (any TunnelAuditSource)?
    /// Serves `/api/v1/sessions...` (SessionsEndpoint.swift); nil: 404.
    public var sessions: (any SessionsEndpoint)?

    public init(authority: UserTokenAuthority, executors: any ExecutorDirectory,
                tunnels: (any TunnelIngress)? = nil, verifier: (any UserTokenVerifying)? = nil,
                readiness: @escaping @Sendable () async -> Bool = { true },
                logger: Logger = Logger(label: "ah.http.api")) {
        self.authority = authority
        self.verifier = verifier ?? authority
        self.executors = executors
        self.tunnels = tunnels
        self.readiness = readiness
        self.logger = logger
    }

    enum Endpoint: CaseIterable {
        case readyz, executors, tunnels, metrics

        var path: String {
            switch self {
            case .readyz: return "/api/v1/readyz"
            case .executors: return "/api/v1/executors"
            case .tunnels: return "/api/v1/tunnels"
            case .metrics: return "/metrics"
            }
        }

        /// The least role the endpoint needs; nil means no token at all.
        var requiredRole: Role? {
            switch self {
            case .readyz: return nil
            case .executors, .metrics: return .viewer
            case .tunnels: return .operator
            }
        }
    }

    public func respond(to request: HTTPAPIRequest) async -> HTTPAPIResponse {
        let response = await answer(request)
        metrics?.requestServed(route: Self.route(of: request), status: Int(response.status.code))
        return response
    }

    /// The request's route as a metric label: an endpoint's path, `CONNECT`, or `unmatched`
    /// (never the raw path, which the client chooses).
    static func route(of request: HTTPAPIRequest) -> String {
        if request.method == .CONNECT { return "CONNECT" }
        if let sessions = sessionsRoute(request.path) { return sessions }
        return Endpoint.allCases.first { $0.path == request.path }?.path ?? "unmatched"
    }

    private func answer(_ request: HTTPAPIRequest) async -> HTTPAPIResponse {
        if request.method == .CONNECT {
            // The decoder stops parsing after a CONNECT head (the rest would be tunnel bytes),
            // so the connection cannot carry another request: close it.
            return .problem(.methodNotAllowed("CONNECT tunnels are not served on this listener yet"),
                            headers: ["allow": "GET"], closeConnection: true)
        }
        guard request.uri.hasPrefix("/") else {
            return .problem(.badRequest("request target must be a path starting with '/'"))
        }
        if let response = await answerSessions(request) { return response }
        guard let endpoint = Endpoint.allCases.first(where: { $0.path == request.path }) else {
            return .problem(.notFound("no such resource: \(request.path.prefix(200))"))
        }
        guard request.method == .GET else {
            return .problem(.methodNotAllowed("\(endpoint.path) supports GET only"), headers: ["allow": "GET"])
        }
        if let role = endpoint.requiredRole {
            if case .failure(let refusal) = await authorize(request, requiring: role) { return refusal.response }
        }
        switch endpoint {
        case .readyz: return await readyz()
        case .executors: return await listExecutors()
        case .tunnels: return await listTunnels(request)
        case .metrics: return await scrape()
        }
    }

    /// The caller's claims if the request carries a valid token whose role allows `required`;
    /// otherwise the 401 or 403 to send.
    func authorize(_ request: HTTPAPIRequest, requiring required: Role) async -> Result<UserClaims, AuthorizationRefusal> {
        let token: String
        switch BearerCredentials.token(fromHeader: request.headers.first(name: "authorization")) {
        case .success(let value):
            token = value
        case .failure(let failure):
            // RFC 6750: no error code when no credentials were sent at all.
            let challenge = failure == .missing ? #"Bearer realm="ah""# : #"Bearer realm="ah", error="invalid_request""#
            return .failure(AuthorizationRefusal(.problem(.unauthorized(failure.description), headers: ["www-authenticate": challenge])))
        }
        let claims: UserClaims
        do {
            claims = try await verifier.verify(token, now: Date())
        } catch {
            let reason = (error as? UserTokenError)?.description ?? "token could not be verified"
            logger.info("refused token", metadata: ["reason": "\(reason)", "remote": "\(request.remoteAddress.hostPort)"])
            return .failure(AuthorizationRefusal(.problem(.unauthorized(reason),
                                                          headers: ["www-authenticate": #"Bearer realm="ah", error="invalid_token""#])))
        }
        guard claims.role.allows(required) else {
            return .failure(AuthorizationRefusal(.problem(.forbidden(
                "role '\(claims.role)' of '\(claims.subject)' does not allow this; it needs role '\(required)' or higher"))))
        }
        return .success(claims)
    }

    private func readyz() async -> HTTPAPIResponse {
        guard await readiness() else { return .problem(.notReady("the access point is not ready (starting or draining)")) }
        return .json(["status": "ready"])
    }

    private func listExecutors() async -> HTTPAPIResponse {
        do {
            return .json(ExecutorList(items: try await executors.executors()))
        } catch {
            logger.error("listing executors failed", metadata: ["error": "\(error)"])
            return .problem(.internalError("the executor registry is unavailable"))
        }
    }
}

/// A refusal (401/403) as a `Result` failure.
struct AuthorizationRefusal: Error {
    let response: HTTPAPIResponse
    init(_ response: HTTPAPIResponse) { self.response = response }
}
