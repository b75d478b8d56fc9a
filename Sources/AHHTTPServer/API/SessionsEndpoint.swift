import AHAPI
import AHAuth

/// What serves `/api/v1/sessions...` (the access point's sessions and their events): called
/// with the caller's verified claims (role ≥ viewer); it applies the ACL's `read` verb itself.
public protocol SessionsEndpoint: Sendable {
    func respond(to request: HTTPAPIRequest, claims: UserClaims) async -> HTTPAPIResponse
}

extension HTTPAPIRoutes {
    static let sessionsPath = "/api/v1/sessions"

    /// The metrics label of a sessions path (`/api/v1/sessions/{id}/events`...), nil for others.
    static func sessionsRoute(_ path: Substring) -> String? {
        guard path == sessionsPath || path.hasPrefix(sessionsPath + "/") else { return nil }
        if path == sessionsPath { return sessionsPath }
        if path.hasSuffix("/events") { return sessionsPath + "/{id}/events" }
        if path.hasSuffix("/info") { return sessionsPath + "/{id}/info" }
        return "unmatched"
    }

    /// Answers a sessions request (nil: not one).
    func answerSessions(_ request: HTTPAPIRequest) async -> HTTPAPIResponse? {
        guard Self.sessionsRoute(request.path) != nil else { return nil }
        guard let sessions else { return .problem(.notFound("sessions are not served on this listener")) }
        guard request.method == .GET else {
            return .problem(.methodNotAllowed("\(Self.sessionsPath) supports GET only"), headers: ["allow": "GET"])
        }
        switch await authorize(request, requiring: .viewer) {
        case .failure(let refusal): return refusal.response
        case .success(let claims): return await sessions.respond(to: request, claims: claims)
        }
    }
}
