import AHControl
import AHQUIC
import Foundation
import Logging
import NIOCore

/// The access point's end of an executor's control stream. Expects Hello first (within a
/// deadline, naming the executor the certificate names), answers Ack, then records every
/// Heartbeat and a Goodbye in the registry, and carries Ping requests.
///
/// Pipeline: ByteToMessageHandler(FrameDecoder(decoding: ExecutorControlMessage.self)) →
/// AccessPointControlHandler. On the
/// connection's event loop.
final class AccessPointControlHandler: ChannelInboundHandler {
    typealias InboundIn = ExecutorControlMessage
    typealias OutboundOut = ByteBuffer

    struct Callbacks {
        var hello: (Hello) -> Void
        var heartbeat: (Heartbeat) -> Void
        var goodbye: (Goodbye) -> Void
        var closed: () -> Void
    }

    private let name: String
    private let configHash: String
    private let callbacks: Callbacks
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var greeted = false
    private var pings: [UInt64: (EventLoopPromise<TimeAmount>, NIODeadline)] = [:]
    private var nextPing: UInt64 = 1

    init(name: String, configHash: String, callbacks: Callbacks, logger: Logger) {
        self.name = name
        self.configHash = configHash
        self.callbacks = callbacks
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        do {
            let header = message.header
            guard header.version == ControlProtocol.version else {
                throw ControlViolation(code: ConnectionCloseCode.unsupportedVersion,
                                       reason: "control protocol version \(header.version) is not supported (this access point speaks \(ControlProtocol.version))")
            }
            if !greeted {
                guard case .hello(let hello) = message else {
                    throw ControlViolation(code: ConnectionCloseCode.protocolViolation, reason: "expected hello, got \(header.type.prefix(32))")
                }
                try HelloValidation.check(hello, certificateName: name)
                greeted = true
                callbacks.hello(hello)
                send(Ack(now: Date(), configHash: configHash), context: context)
                return
            }
            switch message {
            case .heartbeat(let beat):
                callbacks.heartbeat(beat)
            case .goodbye(let goodbye):
                callbacks.goodbye(goodbye)
            case .pong(let pong):
                if let (promise, sent) = pings.removeValue(forKey: pong.id) {
                    promise.succeed(.nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds - sent.uptimeNanoseconds)))
                }
            case .facts(let facts):
                // The executor's sshd came up or was re-keyed: same checks and effect as hello.
                try HelloValidation.check(facts, certificateName: name)
                callbacks.hello(facts)
            case .hello:
                throw ControlViolation(code: ConnectionCloseCode.protocolViolation, reason: "second hello on one control stream")
            case .other(let header):
                logger.debug("ignoring control message", metadata: ["executor": "\(name)", "type": "\(header.type.prefix(32))"])
            }
        } catch let violation as ControlViolation {
            refuse(violation, context: context)
        } catch {
            refuse(ControlViolation(code: ConnectionCloseCode.protocolViolation, reason: "\(error)"), context: context)
        }
    }

    /// Sends Ping and completes with the round-trip time, or fails after `timeout`.
    func ping(timeout: TimeAmount) -> EventLoopFuture<TimeAmount>? {
        guard let context else { return nil }
        let id = nextPing
        nextPing += 1
        let promise = context.eventLoop.makePromise(of: TimeAmount.self)
        pings[id] = (promise, .now())
        send(Ping(id: id), context: context)
        // The task runs on this handler's loop: the handler travels loop-bound.
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: timeout) {
            if let (promise, _) = handler.value.pings.removeValue(forKey: id) {
                promise.fail(ControlViolation(code: 0, reason: "no pong within \(timeout)"))
            }
        }
        return promise.futureResult
    }

    func sayGoodbye(_ goodbye: Goodbye) {
        guard let context else { return }
        send(goodbye, context: context)
    }

    private func refuse(_ violation: ControlViolation, context: ChannelHandlerContext) {
        logger.warning("closing executor connection: control protocol violation",
                       metadata: ["executor": "\(name)", "reason": "\(violation.reason)"])
        if let stream = context.channel as? QUICStreamChannel {
            stream.connection.close(applicationErrorCode: violation.code, reason: String(violation.reason.prefix(200)))
        }
        context.close(promise: nil)
    }

    private func send<T: Encodable>(_ message: T, context: ChannelHandlerContext) {
        guard let frame = try? Frame.encode(message, allocator: context.channel.allocator) else { return }
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if case QUICStreamError.connectionClosed = error {
            // The connection is ending (the executor left, timed out, was replaced): not a
            // protocol problem; the disconnect is logged once where the connection closes.
            context.close(promise: nil)
            return
        }
        refuse(ControlViolation(code: ConnectionCloseCode.protocolViolation, reason: "\(error)"), context: context)
    }

    private func finish() {
        guard context != nil else { return }
        context = nil
        for (_, (promise, _)) in pings { promise.fail(ControlViolation(code: 0, reason: "control stream closed")) }
        pings = [:]
        callbacks.closed()
    }
}

struct ControlViolation: Error, CustomStringConvertible {
    let code: UInt64
    let reason: String
    var description: String { reason }
}
