import NIOCore
import NIOHTTP1

/// A complete REST request as the routes see it: head plus (bounded) body.
public struct HTTPAPIRequest: Sendable {
    public var method: HTTPMethod
    /// The request target as sent (`/api/v1/executors?x=1`).
    public var uri: String
    public var headers: HTTPHeaders
    public var body: ByteBuffer?
    public var remoteAddress: SocketAddress?

    public init(method: HTTPMethod, uri: String, headers: HTTPHeaders = HTTPHeaders(),
                body: ByteBuffer? = nil, remoteAddress: SocketAddress? = nil) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
    }

    /// The target without its query string.
    public var path: Substring { uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "" }
}
