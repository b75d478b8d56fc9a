// Small channel handlers the TLS tests put behind (or in front of) GnuTLSHandler: echo,
// a paced sender that hashes both directions, collectors, a re-chunker that splits
// ciphertext at arbitrary boundaries, and a minimal HTTP responder.

@testable import AHTLS
import Crypto
import NIOCore

enum TestFailure: Error, CustomStringConvertible {
    case closedEarly(String)
    case timedOut(String)

    var description: String {
        switch self {
        case .closedEarly(let what): return "channel closed early: \(what)"
        case .timedOut(let what): return "timed out: \(what)"
        }
    }
}

extension EventLoopPromise {
    /// Fails the promise after `seconds` unless it completed first (a deadline, not a wait).
    func failAfter(seconds: Int64, _ what: String) {
        let task = futureResult.eventLoop.scheduleTask(in: .seconds(seconds)) {
            self.fail(TestFailure.timedOut(what))
        }
        futureResult.whenComplete { _ in task.cancel() }
    }
}

/// Writes back whatever it reads; closes when the peer's input ends. With `rekeyEvery`, it
/// also starts a TLS 1.3 key update (asking the peer to follow) every that many bytes.
final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let rekeyEvery: Int?
    private var sinceRekey = 0
    private(set) var rekeys = 0

    init(rekeyEvery: Int? = nil) {
        self.rekeyEvery = rekeyEvery
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let rekeyEvery {
            sinceRekey += unwrapInboundIn(data).readableBytes
            if sinceRekey >= rekeyEvery {
                sinceRekey = 0
                rekeys += 1
                context.triggerUserOutboundEvent(TLSKeyUpdateRequest(requestPeerUpdate: true), promise: nil)
            }
        }
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Sends `total` bytes in odd-sized chunks as fast as the channel stays writable (one chunk
/// before the handshake, the rest after) and hashes what it sends and what comes back.
final class HashingSender: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Outcome {
        var sentDigest: SHA256.Digest
        var receivedDigest: SHA256.Digest
        var handshake: TLSHandshakeCompleted?
    }

    static let chunkSizes = [1, 3, 7, 17, 1021, 4093, 16_383, 16_385, 65_537, 131_071, 333]
    private static let patternPeriod = 1 << 20

    private let total: Int
    private let done: EventLoopPromise<Outcome>
    private let pattern: ByteBuffer
    private var sent = 0
    private var received = 0
    private var chunkIndex = 0
    private var sendHash = SHA256()
    private var receiveHash = SHA256()
    private var handshake: TLSHandshakeCompleted?
    private var pumping = false

    init(total: Int, done: EventLoopPromise<Outcome>) {
        self.total = total
        self.done = done
        var generator = SystemRandomNumberGenerator()
        var pattern = ByteBuffer()
        let length = Self.patternPeriod + Self.chunkSizes.max()!
        pattern.reserveCapacity(length)
        for _ in 0..<(length / 8 + 1) {
            pattern.writeInteger(generator.next() as UInt64)
        }
        self.pattern = pattern
    }

    func channelActive(context: ChannelHandlerContext) {
        writeChunk(context: context)  // before the handshake: must be held and sent after it
        context.flush()
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let info = event as? TLSHandshakeCompleted {
            handshake = info
            pumping = true
            pump(context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if pumping, context.channel.isWritable {
            pump(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    private func pump(context: ChannelHandlerContext) {
        while sent < total, context.channel.isWritable {
            writeChunk(context: context)
        }
        context.flush()
    }

    private func writeChunk(context: ChannelHandlerContext) {
        guard sent < total else { return }
        let size = min(Self.chunkSizes[chunkIndex % Self.chunkSizes.count], total - sent)
        chunkIndex += 1
        let chunk = pattern.getSlice(at: sent % Self.patternPeriod, length: size)!
        chunk.withUnsafeReadableBytes { sendHash.update(bufferPointer: $0) }
        sent += size
        context.write(wrapOutboundOut(chunk), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { receiveHash.update(bufferPointer: $0) }
        received += buffer.readableBytes
        if received >= total {
            done.succeed(Outcome(sentDigest: sendHash.finalize(), receivedDigest: receiveHash.finalize(),
                                 handshake: handshake))
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        done.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(TestFailure.closedEarly("received \(received) of \(total) bytes"))
        context.fireChannelInactive()
    }
}

/// Reports the handshake outcome: the completion event, or the first error / the close.
final class HandshakeWatcher: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let done: EventLoopPromise<TLSHandshakeCompleted>

    init(done: EventLoopPromise<TLSHandshakeCompleted>) {
        self.done = done
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let info = event as? TLSHandshakeCompleted {
            done.succeed(info)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        done.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(TestFailure.closedEarly("before the handshake completed"))
        context.fireChannelInactive()
    }
}

/// Optionally writes `request` (then half-closes if asked) once active; collects
/// everything it reads and hands it over when the channel closes.
final class Collector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: ByteBuffer?
    private let halfCloseAfterRequest: Bool
    private let done: EventLoopPromise<ByteBuffer>
    private let outputClosed: EventLoopPromise<Void>?
    private var collected = ByteBuffer()
    private(set) var errors: [Error] = []

    init(request: ByteBuffer? = nil, halfCloseAfterRequest: Bool = false,
         outputClosed: EventLoopPromise<Void>? = nil, done: EventLoopPromise<ByteBuffer>) {
        self.request = request
        self.halfCloseAfterRequest = halfCloseAfterRequest
        self.outputClosed = outputClosed
        self.done = done
    }

    func channelActive(context: ChannelHandlerContext) {
        if let request {
            context.writeAndFlush(wrapOutboundOut(request), promise: nil)
            if halfCloseAfterRequest {
                context.close(mode: .output, promise: outputClosed)
            }
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        collected.writeBuffer(&buffer)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        errors.append(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.succeed(collected)
        context.fireChannelInactive()
    }
}

/// Counts what it reads; at end of input reports the count, writes `reply` and closes.
final class ReplyAtEndOfInput: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let reply: ByteBuffer
    private let receivedAtEnd: EventLoopPromise<Int>
    private var received = 0

    init(reply: ByteBuffer, receivedAtEnd: EventLoopPromise<Int>) {
        self.reply = reply
        self.receivedAtEnd = receivedAtEnd
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytes
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        receivedAtEnd.succeed(received)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        receivedAtEnd.fail(error)
        context.close(promise: nil)
    }
}

/// Re-slices inbound bytes into pieces whose sizes `nextSize` picks (e.g. always 1), so
/// the handler after it sees records split at arbitrary boundaries.
final class Rechunker: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let nextSize: () -> Int

    init(nextSize: @escaping () -> Int) {
        self.nextSize = nextSize
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        while buffer.readableBytes > 0 {
            let size = max(1, min(nextSize(), buffer.readableBytes))
            context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: size)!))
        }
    }
}

/// Reads until the end of the request head, answers with a fixed 200 and closes.
final class TinyHTTPResponder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let body = "hello over GnuTLS\n"

    private var head = ByteBuffer()
    private var responded = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        head.writeBuffer(&buffer)
        guard !responded, head.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) != nil else { return }
        responded = true
        let body = Self.body
        let response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n"
            + "Connection: close\r\n\r\n" + body
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, !responded {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Sits in front of a client's GnuTLSHandler. Once `holding` is set (by `HoldArmer` when
/// the handshake completes), it keeps every later ciphertext byte and delivers it all in
/// one read when the connection ends, so post-handshake messages (TLS 1.3 session tickets),
/// data and close_notify reach the TLS handler in a single batch.
final class HoldUntilClose: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    var holding = false
    private var held = ByteBuffer()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard holding else {
            context.fireChannelRead(data)
            return
        }
        var buffer = unwrapInboundIn(data)
        held.writeBuffer(&buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if !holding {
            context.fireChannelReadComplete()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if held.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(held))
            context.fireChannelReadComplete()
            held.clear()
        }
        context.fireChannelInactive()
    }
}

/// Sets `HoldUntilClose.holding` when the TLS handshake completes.
final class HoldArmer: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let hold: HoldUntilClose

    init(_ hold: HoldUntilClose) {
        self.hold = hold
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSHandshakeCompleted {
            hold.holding = true
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Answers the first bytes it reads with a key update (asking the peer to follow), then
/// `reply`, then closes: three kinds of record back to back.
final class KeyUpdateThenReply: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let reply: ByteBuffer
    private var answered = false

    init(reply: ByteBuffer) {
        self.reply = reply
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        answered = true
        context.triggerUserOutboundEvent(TLSKeyUpdateRequest(requestPeerUpdate: true), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in
            channel.close(promise: nil)
        }
    }
}

/// Reports the first error that reaches it.
final class FirstError: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let first: EventLoopPromise<Error>

    init(_ first: EventLoopPromise<Error>) {
        self.first = first
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        first.succeed(error)
        context.fireErrorCaught(error)
    }
}

/// After the handshake: writes `message`, removes the TLS handler (so no close_notify is
/// ever sent) and half-closes TCP — a client that just stops, as many HTTP clients do.
final class SendThenDropTLS: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let tls: GnuTLSHandler
    private let message: ByteBuffer

    init(tls: GnuTLSHandler, message: ByteBuffer) {
        self.tls = tls
        self.message = message
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSHandshakeCompleted {
            context.writeAndFlush(wrapOutboundOut(message), promise: nil)
            let channel = context.channel
            context.pipeline.syncOperations.removeHandler(tls).whenSuccess {
                channel.close(mode: .output, promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }
}
