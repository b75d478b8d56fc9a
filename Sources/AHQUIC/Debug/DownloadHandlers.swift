import NIOCore

/// Server side of `ah debug quic-download-server`: once the client finishes its (empty)
/// request, sends `size` pattern bytes and FIN, pacing itself on writability.
public final class DownloadServerStreamHandler: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let size: Int
    private let pattern = PatternSource(seed: 0)
    private var sent = 0
    private var started = false

    public init(size: Int) { self.size = size }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            started = true
            writeMore(context: context)
        }
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if started && context.channel.isWritable { writeMore(context: context) }
    }

    private func writeMore(context: ChannelHandlerContext) {
        guard sent < size || size == 0 else { return }
        while sent < size && context.channel.isWritable {
            let chunk = pattern.chunk(at: sent, maxLength: size - sent)
            sent += chunk.readableBytes
            context.write(wrapOutboundOut(chunk), promise: nil)
        }
        context.flush()
        if sent == size {
            sent += 1  // only once
            context.close(mode: .output, promise: nil)
        }
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Client side: finishes its request immediately, then counts (and checks) bytes until FIN.
public final class DownloadClientStreamHandler: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer

    private let pattern = PatternSource(seed: 0)
    private let result: EventLoopPromise<Int>
    private var received = 0
    private let verify: Bool

    public init(verify: Bool, result: EventLoopPromise<Int>) {
        self.verify = verify
        self.result = result
    }

    public func channelActive(context: ChannelHandlerContext) {
        context.close(mode: .output, promise: nil)
        context.fireChannelActive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if verify && !pattern.matches(buffer, at: received) {
            result.fail(EchoMismatch(offset: received, detail: "downloaded bytes differ from the pattern"))
            context.close(promise: nil)
            return
        }
        received += buffer.readableBytes
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            result.succeed(received)
            context.close(promise: nil)
        }
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        result.fail(error)
        context.close(promise: nil)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        result.fail(EchoMismatch(offset: received, detail: "stream closed before FIN"))
    }
}
