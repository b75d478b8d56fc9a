import AHIdentity
import AHQUIC
import AHSPIFFE
import AHTestSupport
import Foundation
import Logging
import NIOCore
import NIOPosix
import XCTest

/// Real endpoints on loopback with certificates made for this test: a CA, a server SVID
/// `spiffe://example.org/ah/serve` and a client SVID `spiffe://example.org/ah/agent/dev`.
final class QUICFixture {
    let directory: TemporaryDirectory
    let authority: TestCertificates.Authority
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let serverID = try! SPIFFEID(parsing: "spiffe://example.org/ah/serve")
    let clientID = try! SPIFFEID(parsing: "spiffe://example.org/ah/agent/dev")
    let serverFiles: IdentityFiles
    let clientFiles: IdentityFiles
    var logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = ProcessInfo.processInfo.environment["AH_TEST_LOG"] != nil ? .debug : .critical
        return logger
    }()

    init() throws {
        directory = try TemporaryDirectory(prefix: "ah-quic")
        authority = try TestCertificates.authority(in: directory.url)
        serverFiles = try authority.valid(serverID, name: "serve")
        clientFiles = try authority.valid(clientID, name: "dev")
    }

    func shutdown() {
        try? group.syncShutdownGracefully()
    }

    func identity(_ files: IdentityFiles) -> TLSIdentity {
        TLSIdentity(certFile: files.certPath, keyFile: files.keyPath, caFile: files.caPath)
    }

    /// Server accepting agents (`spiffe://example.org/ah/agent/*`) by default.
    func serverConfiguration(policy: PeerPolicy? = nil) -> QUICConfiguration {
        QUICConfiguration(identity: identity(serverFiles),
                          peerPolicy: policy ?? .prefix(trustDomain: "example.org", pathPrefix: "/ah/agent"))
    }

    /// Client expecting exactly the server's ID by default.
    func clientConfiguration(files: IdentityFiles? = nil, policy: PeerPolicy? = nil) -> QUICConfiguration {
        QUICConfiguration(identity: identity(files ?? clientFiles), peerPolicy: policy ?? .exact(serverID))
    }

    /// `initializer` comes before `onConnection` so that a trailing closure is the stream
    /// initializer (forward matching; the old order relied on deprecated backward matching).
    func startServer(
        _ configuration: QUICConfiguration? = nil,
        initializer: @escaping @Sendable (QUICStreamChannel) -> EventLoopFuture<Void> = { $0.addLoopBoundHandler(EchoStreamHandler()) },
        onConnection: @escaping @Sendable (QUICConnection) -> Void = { _ in }
    ) async throws -> QUICServer {
        try await QUICServer.bind(host: "127.0.0.1", port: 0, configuration: configuration ?? serverConfiguration(),
                                  group: group, logger: logger, onConnection: onConnection,
                                  inboundStreamInitializer: initializer)
    }

    func connect(to server: QUICServer, _ configuration: QUICConfiguration? = nil,
                 inboundStreamInitializer: (@Sendable (QUICStreamChannel) -> EventLoopFuture<Void>)? = nil) async throws -> QUICConnection {
        try await QUICClient.connect(to: server.localAddress, configuration: configuration ?? clientConfiguration(),
                                     group: group, logger: logger, inboundStreamInitializer: inboundStreamInitializer)
    }
}

extension Channel {
    /// Adds a handler confined to this channel's loop. Handlers are not Sendable, so they go in
    /// through the synchronous pipeline: stream initializers already run on the stream's loop.
    func addLoopBoundHandler(_ handler: some ChannelHandler) -> EventLoopFuture<Void> {
        eventLoop.makeCompletedFuture { try self.pipeline.syncOperations.addHandler(handler) }
    }
}

extension AsyncStream where Element == QUICServerEvent {
    /// The next event matching `predicate` (events are awaited, never polled).
    func first(where predicate: (QUICServerEvent) -> Bool) async -> QUICServerEvent? {
        for await event in self where predicate(event) { return event }
        return nil
    }
}

/// Fails the test if `body` takes longer than `seconds` (a hang must not stall the suite).
func withTimeout<T: Sendable>(_ seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw TimeoutError(what: what, seconds: seconds)
        }
        return value
    }
}

struct TimeoutError: Error, CustomStringConvertible {
    let what: String
    let seconds: Double
    var description: String { "\(what) did not finish within \(seconds) s" }
}
