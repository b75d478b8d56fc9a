import AHControl
import NIOCore

/// First handler on every stream an executor opens: waits for the first complete frame,
/// reads its `type` (`hello` opens the control stream, `renew` asks for a certificate), lets
/// `install` put the right handlers behind it, replays the bytes and leaves the pipeline.
/// A stream that sends nothing usable within the deadline, or more than one frame's bound
/// before saying what it is, is closed.
final class StreamKindDispatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let install: (MessageHeader, ChannelPipeline.SynchronousOperations) throws -> Void
    private let onError: (Error) -> Void
    private var buffer: ByteBuffer?
    private var deadline: Scheduled<Void>?
    private var decided = false

    init(install: @escaping (MessageHeader, ChannelPipeline.SynchronousOperations) throws -> Void,
         onError: @escaping (Error) -> Void) {
        self.install = install
        self.onError = onError
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: .seconds(10)) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffer == nil { buffer = incoming } else { buffer!.writeBuffer(&incoming) }
        guard !decided else { return }
        do {
            var peek = buffer!
            guard let body = try Frame.nextBody(from: &peek) else { return }
            let header = try ControlFrame(body: body).header
            decided = true
            deadline?.cancel()
            try install(header, context.pipeline.syncOperations)
            let bytes = buffer!
            buffer = nil
            context.fireChannelRead(wrapInboundOut(bytes))
            context.fireChannelReadComplete()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        } catch {
            decided = true
            onError(error)
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event, !decided {
            decided = true
            onError(FrameError.truncated)
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
