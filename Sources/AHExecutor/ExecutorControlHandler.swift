import AHControl
import AHQUIC
import Foundation
import Logging
import NIOCore

/// The executor's end of the control stream: sends Hello as soon as the stream is open,
/// waits for Ack, then sends a Heartbeat every interval, answers Ping with Pong and notes
/// a Goodbye from the access point. Confined to the stream's event loop; from elsewhere it is
/// reached through `ControlStream`.
///
/// Pipeline: ByteToMessageHandler(ControlFrameDecoder) → ExecutorControlHandler.
final class ExecutorControlHandler: ChannelInboundHandler {
    typealias InboundIn = ControlFrame
    typealias OutboundOut = ByteBuffer

    private let hello: Hello
    private let interval: TimeAmount
    private let openTunnels: @Sendable () -> Int
    private let logger: Logger
    /// Completed with the access point's Ack, or failed if the stream ends first.
    private let acknowledged: EventLoopPromise<Ack>
    /// Completed with the reason when the access point says Goodbye.
    private let farewell: EventLoopPromise<Goodbye>
    private var context: ChannelHandlerContext?
    private var nextBeat: Scheduled<Void>?
    private var sequence: UInt64 = 0
    private var acked = false

    init(hello: Hello, interval: TimeAmount, openTunnels: @escaping @Sendable () -> Int,
         acknowledged: EventLoopPromise<Ack>, farewell: EventLoopPromise<Goodbye>, logger: Logger) {
        self.hello = hello
        self.interval = interval
        self.openTunnels = openTunnels
        self.logger = logger
        self.acknowledged = acknowledged
        self.farewell = farewell
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        send(hello, context: context)
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive, self.context == nil {
            self.context = context
            send(hello, context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        do {
            guard frame.header.version == ControlProtocol.version else {
                throw FrameError.malformed("control protocol version \(frame.header.version) is not supported (this executor speaks \(ControlProtocol.version))")
            }
            switch frame.header.type {
            case "ack":
                let ack = try frame.decode(Ack.self)
                guard !acked else { return }
                acked = true
                let skew = ack.now.timeIntervalSinceNow
                if abs(skew) > 30 {
                    logger.warning("clock differs from the access point's", metadata: ["skewSeconds": "\(Int(skew))"])
                }
                scheduleHeartbeat(context: context)
                acknowledged.succeed(ack)
            case "ping":
                let ping = try frame.decode(Ping.self)
                send(Pong(id: ping.id), context: context)
            case "goodbye":
                let goodbye = try frame.decode(Goodbye.self)
                logger.info("access point is going away", metadata: ["reason": "\(goodbye.reason)"])
                farewell.succeed(goodbye)
            default:
                // Newer access points may send more; unknown requests are not an error.
                logger.debug("ignoring control message", metadata: ["type": "\(frame.header.type)"])
            }
        } catch {
            logger.warning("bad control message from the access point", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    /// Sends a message from outside the pipeline (Goodbye before a planned shutdown, a facts
    /// update); dropped when the stream is gone.
    func sendMessage<T: Encodable>(_ message: T) {
        guard let context else { return }
        context.eventLoop.assertInEventLoop()
        send(message, context: context)
    }

    /// One heartbeat after another, each scheduled when the previous one went out.
    private func scheduleHeartbeat(context: ChannelHandlerContext) {
        nextBeat = context.eventLoop.assumeIsolated().scheduleTask(in: interval) { [weak self] in
            guard let self, let context = self.context else { return }
            self.sequence += 1
            let beat = Heartbeat(sequence: self.sequence, load: SystemFacts.loadAverage,
                                 memoryUsedBytes: SystemFacts.memoryUsedBytes, uptimeSeconds: SystemFacts.uptimeSeconds,
                                 openTunnels: self.openTunnels())
            self.send(beat, context: context)
            self.scheduleHeartbeat(context: context)
        }
    }

    private func send<T: Encodable>(_ message: T, context: ChannelHandlerContext) {
        do {
            context.writeAndFlush(wrapOutboundOut(try Frame.encode(message, allocator: context.channel.allocator)), promise: nil)
        } catch {
            logger.error("cannot encode control message", metadata: ["error": "\(error)"])
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { stop() }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if case QUICStreamError.connectionClosed = error {
            // The connection is ending; its end is logged once by the agent's run loop.
            logger.debug("control stream ended with the connection")
        } else {
            logger.warning("control stream failed", metadata: ["error": "\(error)"])
        }
        context.close(promise: nil)
    }

    private func stop() {
        nextBeat?.cancel()
        nextBeat = nil
        context = nil
        acknowledged.fail(ExecutorError.refused("control stream closed before the access point acknowledged Hello"))
        farewell.fail(ExecutorError.refused("control stream closed"))
    }
}

/// The control stream as seen from outside its event loop: Sendable, so the agent's tasks
/// can hold it; every call hops to the stream's loop and finds the handler there.
struct ControlStream: Sendable {
    let stream: Channel
    let acknowledged: EventLoopFuture<Ack>
    let farewell: EventLoopFuture<Goodbye>

    /// Opens the control stream on `connection` and says `hello`.
    static func open(on connection: QUICConnection, hello: Hello, heartbeatInterval: TimeAmount,
                     openTunnels: @escaping @Sendable () -> Int, logger: Logger) async throws -> ControlStream {
        let acknowledged = connection.eventLoop.makePromise(of: Ack.self)
        let farewell = connection.eventLoop.makePromise(of: Goodbye.self)
        // Nobody may wait for a goodbye that never comes; an unobserved failure is fine.
        farewell.futureResult.whenFailure { _ in }
        let stream = try await connection.openStream { stream in
            stream.eventLoop.makeCompletedFuture {
                let handler = ExecutorControlHandler(hello: hello, interval: heartbeatInterval, openTunnels: openTunnels,
                                                     acknowledged: acknowledged, farewell: farewell, logger: logger)
                try stream.pipeline.syncOperations.addHandler(ByteToMessageHandler(ControlFrameDecoder()))
                try stream.pipeline.syncOperations.addHandler(handler)
            }
        }.get()
        return ControlStream(stream: stream, acknowledged: acknowledged.futureResult, farewell: farewell.futureResult)
    }

    /// Sends `message` on the stream (Goodbye, a facts update), if it is still open.
    func send<T: Encodable & Sendable>(_ message: T) {
        let stream = self.stream
        stream.eventLoop.execute {
            (try? stream.pipeline.syncOperations.handler(type: ExecutorControlHandler.self))?.sendMessage(message)
        }
    }
}
