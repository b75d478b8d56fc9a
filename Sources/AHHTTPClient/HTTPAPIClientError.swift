/// Why a request to an access point got no HTTP response. (An HTTP error status is a response,
/// not an error: callers read it from `HTTPAPIClientResponse`.)
public enum HTTPAPIClientError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The server URL is unusable: bad input, exit 2 in the CLI.
    case invalidURL(String, reason: String)
    /// Refused, unreachable, DNS failure: exit 3 in the CLI.
    case connectionFailed(String)
    case timedOut(String)
    /// The peer did not speak HTTP/1.1 as expected, or closed before a full response.
    case malformedResponse(String)
    case responseTooLarge(limit: Int)

    public var description: String {
        switch self {
        case .invalidURL(let url, let reason): return "--remote-server '\(url)' is not a usable URL: \(reason)"
        case .connectionFailed(let reason): return reason
        case .timedOut(let what): return what
        case .malformedResponse(let reason): return "bad response from the server: \(reason)"
        case .responseTooLarge(let limit): return "response exceeds \(limit) bytes"
        }
    }
}
