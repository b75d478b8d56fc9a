import Foundation
import NIOCore

/// What the access point answers on an uplink stream.
public enum EventsReply: Sendable, Equatable {
    case ack(EventsAck)
    case refused(EventsRefused)
}

/// The leader's reading side of an uplink stream: every answer frame goes to `replies`; the
/// stream ending (or failing) finishes it.
public final class EventsReplyHandler: ChannelInboundHandler, Sendable {
    public typealias InboundIn = ByteBuffer

    public let replies: AsyncThrowingStream<EventsReply, any Error>
    private let continuation: AsyncThrowingStream<EventsReply, any Error>.Continuation
    // Only touched on the stream's event loop.
    nonisolated(unsafe) private var buffer = ByteBuffer()

    public init() {
        (replies, continuation) = AsyncThrowingStream.makeStream(of: EventsReply.self)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        do {
            while let frame = try EventsFraming.next(from: &buffer) {
                let bytes = Data(frame.readableBytesView)
                let decoder = JSONDecoder()
                let header = try decoder.decode(EventsHeader.self, from: bytes)
                switch header.type {
                case EventsAck.typeName: continuation.yield(.ack(try decoder.decode(EventsAck.self, from: bytes)))
                case EventsRefused.typeName: continuation.yield(.refused(try decoder.decode(EventsRefused.self, from: bytes)))
                default: throw EventsProtocolError.malformed("unexpected answer '\(header.type.prefix(32))' on an event stream")
                }
            }
        } catch {
            continuation.finish(throwing: error)
            context.close(promise: nil)
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { continuation.finish() }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        continuation.finish(throwing: error)
        context.close(promise: nil)
    }
}
