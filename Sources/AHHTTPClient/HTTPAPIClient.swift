import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A minimal HTTP/1.1 client for the access point's REST API: one request per connection,
/// complete bodies, Bearer authentication. Small on purpose: the CLI needs GET with a token,
/// and NIO keeps it free of URLSession's platform differences.
public struct HTTPAPIClient: Sendable {
    public let server: APIServerURL
    public let group: any EventLoopGroup
    /// Limits connect and the whole exchange.
    public var timeout: TimeAmount
    public var maxResponseBytes: Int = 16 << 20
    /// Adds TLS (client side) to a fresh channel; needed for https:// servers.
    public var tls: (@Sendable (Channel) throws -> Void)?

    public init(server: APIServerURL, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                timeout: TimeAmount = .seconds(30)) {
        self.server = server
        self.group = group
        self.timeout = timeout
    }

    /// `GET base + path` (path starts with "/"), with `Authorization: Bearer token` if given.
    public func get(_ path: String, bearerToken: String? = nil) async throws(HTTPAPIClientError) -> HTTPAPIClientResponse {
        var headers: HTTPHeaders = ["host": server.authority, "accept": "application/json", "user-agent": "ah",
                                    "connection": "close"]
        if let bearerToken { headers.add(name: "authorization", value: "Bearer \(bearerToken)") }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: server.basePath + path, headers: headers)
        return try await exchange(head)
    }

    private func exchange(_ head: HTTPRequestHead) async throws(HTTPAPIClientError) -> HTTPAPIClientResponse {
        let loop = group.next()
        let promise = loop.makePromise(of: HTTPAPIClientResponse.self)
        let maxBody = maxResponseBytes
        let tls = self.tls
        guard tls != nil || !server.useTLS else {
            promise.fail(HTTPAPIClientError.invalidURL(server.description, reason: "https needs a TLS setup"))
            throw .invalidURL(server.description, reason: "https needs a TLS setup")
        }
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(timeout)
                .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        if let tls { try tls(channel) }
                        try sync.addHandler(HTTPRequestEncoder())
                        try sync.addHandler(ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)))
                        try sync.addHandler(ResponseCollector(promise: promise, maxBodyBytes: maxBody))
                    }
                }
                .connect(host: server.host, port: server.port).get()
        } catch {
            promise.fail(error)  // nobody waits on it; fulfil it so NIO does not complain
            throw .connectionFailed("cannot connect to \(server): \(Self.reason(error))")
        }
        let deadline = loop.scheduleTask(in: timeout) {
            promise.fail(HTTPAPIClientError.timedOut("no complete response from \(server) within \(timeout)"))
            channel.close(promise: nil)
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        defer {
            deadline.cancel()
            channel.close(promise: nil)
        }
        do {
            return try await promise.futureResult.get()
        } catch let error as HTTPAPIClientError {
            throw error
        } catch {
            throw .malformedResponse("\(error)")
        }
    }

    /// "connection refused" rather than NIO's nested error dump.
    private static func reason(_ error: any Error) -> String {
        if let connection = error as? NIOConnectionError {
            if let dns = connection.dnsAError ?? connection.dnsAAAAError { return "cannot resolve host (\(dns))" }
            if let first = connection.connectionErrors.first { return reason(first.error) }
        }
        if let io = error as? IOError {
            return String(cString: strerror(io.errnoCode)).lowercased()
        }
        if case ChannelError.connectTimeout = error { return "connect timed out" }
        return "\(error)"
    }
}
