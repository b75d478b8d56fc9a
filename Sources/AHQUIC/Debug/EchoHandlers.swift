import NIOCore

/// Server side of `ah debug quic-echo-server`: writes back every byte and finishes its side
/// when the peer finishes. Reads pause while the stream is not writable, so a peer that
/// does not read its echo is held back by flow control instead of filling our memory.
public final class EchoStreamHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private var readHeld = false

    public init() {}

    public func read(context: ChannelHandlerContext) {
        if context.channel.isWritable { context.read() } else { readHeld = true }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && readHeld {
            readHeld = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.close(mode: .output, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Client side of one echoed stream: sends `total` pattern bytes, finishes, and checks that
/// exactly the same bytes come back before the server's FIN.
public final class EchoClientStreamHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let total: Int
    private let pattern: PatternSource
    private let result: EventLoopPromise<Void>
    private var sent = 0
    private var received = 0

    public init(bytes: Int, seed: Int, result: EventLoopPromise<Void>) {
        self.total = bytes
        self.pattern = PatternSource(seed: seed)
        self.result = result
    }

    public func channelActive(context: ChannelHandlerContext) {
        writeMore(context: context)
        context.fireChannelActive()
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { writeMore(context: context) }
        context.fireChannelWritabilityChanged()
    }

    private func writeMore(context: ChannelHandlerContext) {
        guard sent < total else { return }
        while sent < total && context.channel.isWritable {
            let chunk = pattern.chunk(at: sent, maxLength: total - sent)
            sent += chunk.readableBytes
            context.write(wrapOutboundOut(chunk), promise: nil)
        }
        context.flush()
        if sent == total {
            context.close(mode: .output, promise: nil)
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard received + buffer.readableBytes <= total, pattern.matches(buffer, at: received) else {
            fail(context: context, EchoMismatch(offset: received, detail: "echoed bytes differ from what was sent"))
            return
        }
        received += buffer.readableBytes
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            if received == total {
                result.succeed(())
                context.close(promise: nil)
            } else {
                fail(context: context, EchoMismatch(offset: received, detail: "peer finished after \(received) of \(total) bytes"))
            }
        }
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(context: context, error)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        result.fail(EchoMismatch(offset: received, detail: "stream closed after \(received) of \(total) bytes"))
        context.fireChannelInactive()
    }

    private func fail(context: ChannelHandlerContext, _ error: Error) {
        result.fail(error)
        context.close(promise: nil)
    }
}

public struct EchoMismatch: Error, CustomStringConvertible {
    public let offset: Int
    public let detail: String
    public var description: String { "\(detail) (at byte \(offset))" }
}
