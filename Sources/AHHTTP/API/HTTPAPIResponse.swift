import NIOHTTP1

/// A complete response; the connection handler adds framing (`content-length`, `connection`).
public struct HTTPAPIResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Close the connection after this response (errors that leave the stream unparseable).
    public var closeConnection: Bool

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [],
                closeConnection: Bool = false) {
        self.status = status
        self.headers = headers
        self.body = body
        self.closeConnection = closeConnection
    }

    /// A JSON body; API data is per-user, so caches must not keep it.
    public static func json<T: Encodable>(_ value: T, status: HTTPResponseStatus = .ok) -> HTTPAPIResponse {
        do {
            let body = try APIJSON.encode(value)
            return HTTPAPIResponse(status: status, headers: ["content-type": "application/json", "cache-control": "no-store"], body: body)
        } catch {
            return .problem(.internalError("cannot encode the response: \(error)"))
        }
    }

    public static func problem(_ problem: Problem, headers extra: HTTPHeaders = HTTPHeaders(),
                               closeConnection: Bool = false) -> HTTPAPIResponse {
        var headers: HTTPHeaders = ["content-type": Problem.mediaType, "cache-control": "no-store"]
        headers.add(contentsOf: extra)
        // Encoding four plain fields cannot fail; the fallback keeps the signature non-throwing.
        let body = (try? APIJSON.encode(problem)) ?? Array(#"{"status":500}"#.utf8)
        return HTTPAPIResponse(status: HTTPResponseStatus(statusCode: problem.status), headers: headers,
                               body: body, closeConnection: closeConnection)
    }
}
