import AHControl
import AHQUIC
import AHTunnel
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Opens the executor's end of tunnels: for each stream the access point opens, reads the
/// OpenTCP request, checks it against the policy, dials the local destination, answers, and
/// then joins the stream and the TCP connection (`Tunnel.join`).
public final class TunnelOpener: Sendable {
    public let policy: TunnelPolicy
    let logger: Logger
    let connectTimeout: TimeAmount
    /// Called when a tunnel to the sshd (port 22) is connected: the agent re-reads host keys
    /// it could not read before.
    let sshReached: @Sendable () -> Void
    private let state = NIOLockedValueBox<(open: Int, draining: Bool)>((0, false))

    public init(policy: TunnelPolicy, connectTimeout: TimeAmount = .seconds(5), logger: Logger,
                sshReached: @escaping @Sendable () -> Void = {}) {
        self.policy = policy
        self.connectTimeout = connectTimeout
        self.logger = logger
        self.sshReached = sshReached
    }

    /// Whether new tunnels are refused (`drain` was called).
    public var isDraining: Bool { state.withLockedValue { $0.draining } }

    public var openTunnels: Int { state.withLockedValue { $0.open } }

    /// Stops accepting new tunnels (they are answered `draining`).
    public func drain() { state.withLockedValue { $0.draining = true } }

    /// Waits until no tunnel is open or `grace` has passed; returns how many were still open.
    public func waitForTunnels(grace: TimeInterval) async -> Int {
        await Tunnel.waitForDrain(grace: grace) { openTunnels }
    }

    /// The inbound-stream initializer for the control connection.
    public func initialize(_ stream: Channel) -> EventLoopFuture<Void> {
        stream.eventLoop.makeCompletedFuture {
            try stream.pipeline.syncOperations.addHandler(OpenTCPRequestHandler(opener: self))
        }
    }

    /// Decides and dials; answers the stream; on success joins the two.
    func handle(_ request: OpenTCP, on stream: Channel, from requestHandler: OpenTCPRequestHandler) {
        stream.eventLoop.assertInEventLoop()
        let decision: Result<TunnelPolicy.Destination, OpenTCPResultRefusal>
        if state.withLockedValue({ $0.draining }) {
            decision = .failure(.init(.draining, "the executor is shutting down"))
        } else {
            decision = policy.destination(forPort: request.port)
        }
        let tunnel = String(request.tunnelID.prefix(64))
        guard case .success(let destination) = decision else {
            if case .failure(let refusal) = decision {
                logger.warning("tunnel refused", metadata: ["tunnel": "\(tunnel)", "port": "\(request.port)", "reason": "\(refusal.message)"])
                answer(.refused(refusal.code, refusal.message), on: stream, thenClose: true)
            }
            return
        }
        state.withLockedValue { $0.open += 1 }
        let started = Date()
        ClientBootstrap(group: stream.eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                // The sshd speaks first; keep its banner until the tunnel is joined.
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(TunnelPrelude()) }
            }
            .connect(host: destination.host, port: destination.port)
            .hop(to: stream.eventLoop)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .failure(let error):
                    self.finished()
                    self.logger.warning("tunnel destination unreachable", metadata: [
                        "tunnel": "\(tunnel)", "destination": "\(destination)", "error": "\(error)"])
                    self.answer(.refused(.connectFailed, "cannot connect to \(destination): \(error)"), on: stream, thenClose: true)
                case .success(let tcp):
                    self.logger.info("tunnel open", metadata: ["tunnel": "\(tunnel)", "destination": "\(destination)"])
                    if request.port == 22 { self.sshReached() }
                    self.answer(.success, on: stream, thenClose: false)
                    requestHandler.becomePrelude()
                    let joined = Tunnel.join(stream, tcp,
                                             abortFirst: { stream in
                                                 // The far end should see an error, not a clean end of data.
                                                 stream.triggerUserOutboundEvent(QUICStreamEvent.reset(applicationErrorCode: TunnelCloseCode.destinationFailed), promise: nil)
                                                 stream.close(promise: nil)
                                             })
                    joined.whenComplete { result in
                        self.finished()
                        let summary = try? result.get()
                        self.logger.info("tunnel closed", metadata: [
                            "tunnel": "\(tunnel)", "bytesIn": "\(summary?.bytesForward ?? 0)", "bytesOut": "\(summary?.bytesBackward ?? 0)",
                            "seconds": "\(String(format: "%.1f", Date().timeIntervalSince(started)))",
                            "clean": "\(summary?.clean ?? false)"])
                    }
                }
            }
    }

    private func finished() {
        state.withLockedValue { $0.open -= 1 }
    }

    private func answer(_ result: OpenTCPResult, on stream: Channel, thenClose: Bool) {
        guard let frame = try? Frame.encode(result, allocator: stream.allocator) else { return }
        stream.writeAndFlush(frame, promise: nil)
        if thenClose { stream.close(promise: nil) }
    }
}

/// First handler on a tunnel stream: reads exactly one OpenTCP frame (bounded), then keeps
/// whatever follows while the local connection is being dialled, and hands it to a
/// `TunnelPrelude` (`becomePrelude`) so no byte is dropped before the tunnel is joined.
final class OpenTCPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let opener: TunnelOpener
    private var buffer: ByteBuffer?
    private var done = false
    private var deadline: Scheduled<Void>?
    private var context: ChannelHandlerContext?
    private var inputEnded = false

    init(opener: TunnelOpener) { self.opener = opener }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // A stream that never says what it wants must not stay open.
        let channel = context.channel
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(10)) { channel.close(promise: nil) }
    }

    /// Leaves the pipeline in favour of a `TunnelPrelude` holding the bytes after the request
    /// (and whatever arrives until `Tunnel.join` takes over). On the stream's loop, at once, so
    /// no read can fall between the two.
    func becomePrelude() {
        context?.eventLoop.assertInEventLoop()
        let rest = buffer.flatMap { $0.readableBytes > 0 ? [$0] : nil } ?? []
        buffer = nil
        guard let context else { return }
        let sync = context.pipeline.syncOperations
        try? sync.addHandler(TunnelPrelude(initial: rest, inputEnded: inputEnded), position: .after(self))
        sync.removeHandler(context: context, promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputEnded = true
            if !done { context.close(promise: nil) }  // ended without a complete request
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffer == nil { buffer = incoming } else { buffer!.writeBuffer(&incoming) }
        guard !done else { return }
        do {
            guard let request = try ControlFrame.next(OpenTCP.self, type: "open-tcp", from: &buffer!) else { return }
            guard (1...65535).contains(request.port) else { throw FrameError.malformed("port \(request.port) out of range") }
            done = true
            deadline?.cancel()
            opener.handle(request, on: context.channel, from: self)
        } catch {
            done = true
            deadline?.cancel()
            opener.logger.warning("bad tunnel request from the access point", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }
}
