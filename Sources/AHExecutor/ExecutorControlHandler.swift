import AHControl
import AHQUIC
import Foundation
import Logging
import NIOCore

/// The executor's end of the control stream: sends Hello as soon as the stream is open,
/// waits for Ack, then sends a Heartbeat every interval, answers Ping with Pong and notes
/// a Goodbye from the access point. Runs on the stream's event loop.
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
    let acknowledged: EventLoopPromise<Ack>
    /// Completed with the reason when the access point says Goodbye.
    let farewell: EventLoopPromise<Goodbye>
    private var context: ChannelHandlerContext?
    private var heartbeats: RepeatedTask?
    private var sequence: UInt64 = 0
    private var acked = false

    init(hello: Hello, interval: TimeAmount, openTunnels: @escaping @Sendable () -> Int, loop: EventLoop, logger: Logger) {
        self.hello = hello
        self.interval = interval
        self.openTunnels = openTunnels
        self.logger = logger
        self.acknowledged = loop.makePromise(of: Ack.self)
        self.farewell = loop.makePromise(of: Goodbye.self)
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
                startHeartbeats(context: context)
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

    /// Sends Goodbye (before a planned shutdown).
    func sayGoodbye(_ goodbye: Goodbye) {
        guard let context else { return }
        send(goodbye, context: context)
    }

    private func startHeartbeats(context: ChannelHandlerContext) {
        heartbeats = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
            guard let self, let context = self.context else { return }
            self.sequence += 1
            let beat = Heartbeat(sequence: self.sequence, load: SystemFacts.loadAverage,
                                 memoryUsedBytes: SystemFacts.memoryUsedBytes, uptimeSeconds: SystemFacts.uptimeSeconds,
                                 openTunnels: self.openTunnels())
            self.send(beat, context: context)
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
        heartbeats?.cancel()
        heartbeats = nil
        context = nil
        acknowledged.fail(ExecutorError.refused("control stream closed before the access point acknowledged Hello"))
        farewell.fail(ExecutorError.refused("control stream closed"))
    }
}
