import NIOCore

/// Server side of a one-shot exchange on a stream: read one framed request (bounded),
/// answer with one framed response, finish. Used for enrollment and renewal.
public final class FrameResponder<Request: Decodable & Sendable, Response: Encodable & Sendable>: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let respond: (Request) -> EventLoopFuture<Response>
    private let onError: (Error) -> Void
    private var buffer = ByteBuffer()
    private var answered = false

    /// `respond` runs on the stream's event loop once the whole request has arrived.
    public init(respond: @escaping (Request) -> EventLoopFuture<Response>, onError: @escaping (Error) -> Void = { _ in }) {
        self.respond = respond
        self.onError = onError
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        do {
            // Reject oversize input as soon as the length prefix says so, before buffering it.
            if buffer.readableBytes > Frame.maxFrameSize + 4 { throw FrameError.tooLarge(buffer.readableBytes) }
            guard let request = try Frame.decode(Request.self, from: &buffer) else { return }
            answered = true
            let channel = context.channel
            // Back on the stream's loop (whatever loop `respond` answered on) before touching self.
            respond(request).hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
                switch result {
                case .success(let response):
                    if let frame = try? Frame.encode(response, allocator: channel.allocator) {
                        channel.writeAndFlush(frame, promise: nil)
                    }
                    channel.close(mode: .output, promise: nil)
                case .failure(let error):
                    self.onError(error)
                    channel.close(promise: nil)
                }
            }
        } catch {
            answered = true
            onError(error)
            context.close(promise: nil)
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event, !answered {
            answered = true
            onError(FrameError.truncated)
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        onError(error)
        context.close(promise: nil)
    }
}

/// Client side: send one framed request, finish, and read one framed response.
public final class FrameRequester<Request: Encodable & Sendable, Response: Decodable & Sendable>: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let request: Request
    private let promise: EventLoopPromise<Response>
    private var buffer = ByteBuffer()

    public init(request: Request, promise: EventLoopPromise<Response>) {
        self.request = request
        self.promise = promise
    }

    public func channelActive(context: ChannelHandlerContext) {
        do {
            let frame = try Frame.encode(request, allocator: context.channel.allocator)
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
            context.close(mode: .output, promise: nil)
        } catch {
            promise.fail(error)
            context.close(promise: nil)
        }
        context.fireChannelActive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        do {
            if buffer.readableBytes > Frame.maxFrameSize + 4 { throw FrameError.tooLarge(buffer.readableBytes) }
            if let response = try Frame.decode(Response.self, from: &buffer) {
                promise.succeed(response)
                context.close(promise: nil)
            }
        } catch {
            promise.fail(error)
            context.close(promise: nil)
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            promise.fail(FrameError.truncated)
            context.close(promise: nil)
        }
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        promise.fail(FrameError.truncated)
    }
}
