/// An RFC 9457 problem document (`application/problem+json`): every REST error has this body.
///
/// `type` is a URN naming the kind of problem (`urn:ah:problem:unauthorized`) so clients can
/// branch on it without parsing `title` or `detail`; `detail` says what to do about it and
/// never echoes credentials.
public struct Problem: Sendable, Equatable, Codable, Error {
    public var type: String
    public var title: String
    public var status: Int
    public var detail: String

    public init(type: String, title: String, status: Int, detail: String) {
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
    }

    public static let mediaType = "application/problem+json"

    static func make(_ slug: String, _ title: String, _ status: Int, _ detail: String) -> Problem {
        Problem(type: "urn:ah:problem:" + slug, title: title, status: status, detail: detail)
    }

    public static func badRequest(_ detail: String) -> Problem { make("bad-request", "Bad Request", 400, detail) }
    public static func unauthorized(_ detail: String) -> Problem { make("unauthorized", "Unauthorized", 401, detail) }
    public static func forbidden(_ detail: String) -> Problem { make("forbidden", "Forbidden", 403, detail) }
    public static func notFound(_ detail: String) -> Problem { make("not-found", "Not Found", 404, detail) }
    public static func gone(_ detail: String) -> Problem { make("gone", "Gone", 410, detail) }
    public static func methodNotAllowed(_ detail: String) -> Problem { make("method-not-allowed", "Method Not Allowed", 405, detail) }
    public static func requestTimeout(_ detail: String) -> Problem { make("request-timeout", "Request Timeout", 408, detail) }
    public static func payloadTooLarge(_ detail: String) -> Problem { make("payload-too-large", "Content Too Large", 413, detail) }
    public static func headersTooLarge(_ detail: String) -> Problem {
        make("request-header-fields-too-large", "Request Header Fields Too Large", 431, detail)
    }
    public static func proxyAuthenticationRequired(_ detail: String) -> Problem {
        make("proxy-authentication-required", "Proxy Authentication Required", 407, detail)
    }
    public static func badGateway(_ detail: String) -> Problem { make("bad-gateway", "Bad Gateway", 502, detail) }
    public static func unavailable(_ detail: String) -> Problem { make("unavailable", "Service Unavailable", 503, detail) }
    public static func gatewayTimeout(_ detail: String) -> Problem { make("gateway-timeout", "Gateway Timeout", 504, detail) }
    public static func internalError(_ detail: String) -> Problem { make("internal", "Internal Server Error", 500, detail) }
    public static func notReady(_ detail: String) -> Problem { make("not-ready", "Service Unavailable", 503, detail) }
}
