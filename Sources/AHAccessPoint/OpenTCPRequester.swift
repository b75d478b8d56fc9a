import AHControl
import AHTunnel
import NIOCore

/// The access point's side of a tunnel stream: sends OpenTCP, waits for the executor's one
/// OpenTCPResult frame (bounded, with a deadline), then gives way to a `TunnelPrelude` that
/// keeps the bytes following the result (sshd speaks first) until the tunnel is joined.
final class OpenTCPRequester: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: OpenTCP
    let result: EventLoopPromise<OpenTCPResult>
    private let timeout: TimeAmount
    private var buffer: ByteBuffer?
    private var deadline: Scheduled<Void>?

    /// Made on the stream's loop (it is loop-confined); `result` is made by the caller so the
    /// answer can be awaited from elsewhere without sharing the handler.
    init(request: OpenTCP, timeout: TimeAmount, result: EventLoopPromise<OpenTCPResult>) {
        self.request = request
        self.timeout = timeout
        self.result = result
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let promise = result
        let timeout = self.timeout
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) {
            promise.fail(TunnelOpenError.timedOut(timeout))
            channel.close(promise: nil)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        do {
            context.writeAndFlush(wrapOutboundOut(try Frame.encode(request, allocator: context.channel.allocator)), promise: nil)
        } catch {
            fail(error, context: context)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffer == nil { buffer = incoming } else { buffer!.writeBuffer(&incoming) }
        do {
            guard let answer = try ControlFrame.next(OpenTCPResult.self, type: "open-tcp-result", from: &buffer!) else { return }
            deadline?.cancel()
            let rest = buffer.map { [$0] } ?? []
            buffer = nil
            let sync = context.pipeline.syncOperations
            try sync.addHandler(TunnelPrelude(initial: rest), position: .after(self))
            sync.removeHandler(context: context, promise: nil)
            result.succeed(answer)
        } catch {
            fail(error, context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        result.fail(TunnelOpenError.streamClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(error, context: context)
    }

    private func fail(_ error: Error, context: ChannelHandlerContext) {
        deadline?.cancel()
        result.fail(error)
        context.close(promise: nil)
    }
}

enum TunnelOpenError: Error, CustomStringConvertible {
    case timedOut(TimeAmount)
    case streamClosed

    var description: String {
        switch self {
        case .timedOut(let t): return "the executor did not answer the tunnel request within \(t)"
        case .streamClosed: return "the executor closed the tunnel stream without answering"
        }
    }
}
