import AHAPI
import NIOHTTP1

/// A route's answer: a complete body, or a stream of chunks (server-sent events). The
/// connection handler adds framing (`content-length`, or chunked transfer for a stream, and
/// `connection`).
public struct HTTPAPIResponse: Sendable {
    public enum Content: Sendable {
        case full([UInt8])
        /// Written chunk by chunk as the producer makes them; the connection closes afterwards.
        case stream(HTTPResponseStream)
    }

    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var content: Content
    /// Close the connection after this response (errors that leave the stream unparseable).
    public var closeConnection: Bool

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [],
                closeConnection: Bool = false) {
        self.status = status
        self.headers = headers
        self.content = .full(body)
        self.closeConnection = closeConnection
    }

    /// A streamed response: `stream` produces the body while the client reads it.
    public init(status: HTTPResponseStatus = .ok, headers: HTTPHeaders = HTTPHeaders(), stream: HTTPResponseStream) {
        self.status = status
        self.headers = headers
        self.content = .stream(stream)
        self.closeConnection = true
    }

    /// The complete body; empty for a streamed response.
    public var body: [UInt8] {
        get {
            if case .full(let bytes) = content { return bytes }
            return []
        }
        set { content = .full(newValue) }
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
