// Real TCP on 127.0.0.1 for the TLS tests: a server on port 0 and clients connecting to it,
// with pipelines the test supplies.

import AHTLS
import NIOCore
import NIOPosix
import XCTest

final class TLSHarness {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    private var channels: [Channel] = []

    func shutdown() async throws {
        for channel in channels {
            try? await channel.close()
        }
        try await group.shutdownGracefully()
    }

    /// Binds 127.0.0.1:0; `handlers` builds each accepted connection's pipeline.
    func startServer(allowHalfClosure: Bool = false,
                     handlers: @escaping @Sendable (Channel) throws -> [ChannelHandler]) async throws -> Int {
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: allowHalfClosure)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(handlers(channel))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        channels.append(server)
        return server.localAddress!.port!
    }

    func connect(port: Int, allowHalfClosure: Bool = false,
                 handlers: @escaping @Sendable (Channel) throws -> [ChannelHandler]) async throws -> Channel {
        let channel = try await ClientBootstrap(group: group)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: allowHalfClosure)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(handlers(channel))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        channels.append(channel)
        return channel
    }

    func makePromise<T>(_ type: T.Type = T.self, deadline seconds: Int64 = 60, _ what: String) -> EventLoopPromise<T> {
        let promise = group.next().makePromise(of: T.self)
        promise.failAfter(seconds: seconds, what)
        return promise
    }
}

/// The TLS test classes' common fixture: an event loop harness and a fresh test PKI per test.
class TLSTestCase: XCTestCase {
    var harness: TLSHarness!
    var pki: TLSTestPKI!

    override func setUp() async throws {
        harness = TLSHarness()
        pki = try await TLSTestPKI.make()
    }

    override func tearDown() async throws {
        try await harness.shutdown()
        harness = nil
        pki = nil
    }
}
