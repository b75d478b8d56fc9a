@testable import AHHTTPServer
import AHAPI
import AHTunnel
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A CONNECT ingress for tests: records what reaches it; refuses with 404, or, when given an
/// echo server, accepts by dialling it (the far side of the tunnel echoes every byte).
final class TestIngress: TunnelIngress {
    private let state = NIOLockedValueBox<(opened: [ConnectTarget], badRequests: [ConnectBadRequest])>(([], []))
    let echoPort: Int?
    /// When set, `open` waits for it before answering.
    let gate: Signal?

    init(echoPort: Int? = nil, gate: Signal? = nil) {
        self.echoPort = echoPort
        self.gate = gate
    }

    var opened: [ConnectTarget] { state.withLockedValue { $0.opened } }
    var badRequests: [ConnectBadRequest] { state.withLockedValue { $0.badRequests } }

    func refusedAsBadRequest(_ refusal: ConnectBadRequest) async {
        state.withLockedValue { $0.badRequests.append(refusal) }
    }

    func open(_ request: ConnectRequest) async -> ConnectOutcome {
        state.withLockedValue { $0.opened.append(request.target) }
        if let gate { await gate.wait() }
        guard let echoPort else {
            return .refused(.problem(.notFound("no executor named '\(request.target.executor)'"), closeConnection: true))
        }
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(TunnelPrelude()) }
                }
                .connect(host: "127.0.0.1", port: echoPort).get()
            return .accepted(AcceptedTunnel(channel: channel, finished: { _ in }, abandoned: { channel.close(promise: nil) }))
        } catch {
            return .refused(.problem(.badGateway("echo server: \(error)"), closeConnection: true))
        }
    }
}

/// A TCP server that echoes every byte (the executor's far end in tunnel tests).
final class EchoServer: Sendable {
    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    init() async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func close() async { try? await channel.close() }

    private final class Echo: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(data, promise: nil)
        }
    }
}
