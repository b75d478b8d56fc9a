import AHEvents
import Foundation
import Logging
import NIOCore

/// The access point's end of a leader's uplink stream (ALPN `ah-events/1`): reads requests
/// with every bound applied, handles one at a time (reading pauses meanwhile: QUIC flow
/// control holds the leader back), answers each with `events-ack`, or `events-refused` and
/// the end of the stream.
final class SessionsUplinkHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let leader: String
    private let keyHash: [UInt8]
    private let ingest: SessionsIngest
    private var reader = EventsRequestReader()
    private var busy = false
    private var finished = false
    /// Sessions this stream has written to (each counted once as an attached uplink).
    private var attached: Set<String> = []

    /// What may sit unread while a request is being stored. Reading pauses meanwhile, so this
    /// is what was already read when it paused: a leader may pipeline a few batches, and QUIC
    /// flow control (the stream window, at most 8 MiB) holds back the rest.
    private static let maxBufferedBytes = 2 * EventsLimits.maxBatchBytes + 2 * EventsLimits.maxFrameBytes

    init(leader: String, keyHash: [UInt8], ingest: SessionsIngest) {
        self.leader = leader
        self.keyHash = keyHash
        self.ingest = ingest
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        var incoming = unwrapInboundIn(data)
        reader.feed(&incoming)
        if busy {
            if reader.bufferedBytes > Self.maxBufferedBytes {
                refuse(EventsRefused(session: "", code: "bad-request",
                                     message: "more than \(Self.maxBufferedBytes) bytes sent before the previous batch was acknowledged"),
                       context: context)
            }
            return
        }
        process(context: context)
    }

    private func process(context: ChannelHandlerContext) {
        // One request at a time, in order. Turning autoRead back on (below) may deliver what
        // the stream already holds at once, re-entering `channelRead` and so `process` before
        // the caller's own `process` call: without this guard a second batch was stored
        // concurrently with the first, overtook it and was refused as a gap (bench/events).
        guard !busy, !finished else { return }
        let request: EventsRequest
        do {
            guard let next = try reader.next() else { return }
            request = next
        } catch {
            refuse(EventsRefused(session: "", code: error.code, message: error.description), context: context)
            return
        }
        let session: String
        switch request {
        case .open(let id), .end(let id): session = id
        case .batch(let id, _): session = id
        }
        if attached.insert(session).inserted { ingest.hub.uplinkAttached(session) }
        busy = true
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        let ingest = self.ingest
        let leader = self.leader
        let keyHash = self.keyHash
        let promise = context.eventLoop.makePromise(of: EventsReply.self)
        promise.completeWithTask { await ingest.handle(request, leader: leader, keyHash: keyHash) }
        promise.futureResult.assumeIsolated().whenSuccess { reply in
            self.busy = false
            guard !self.finished else { return }
            switch reply {
            case .ack(let ack):
                self.send(ack, context: context)
                context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
                self.process(context: context)
            case .refused(let refusal):
                self.refuse(refusal, context: context)
            }
        }
    }

    private func send<T: Encodable>(_ message: T, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 128)
        guard (try? EventsFraming.encode(message, into: &buffer)) != nil else { return }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    private func refuse(_ refusal: EventsRefused, context: ChannelHandlerContext) {
        guard !finished else { return }
        finished = true
        ingest.logger.warning("refused a leader's event stream",
                              metadata: ["leader": "\(leader)", "code": "\(refusal.code)", "reason": "\(refusal.message.prefix(200))"])
        var buffer = context.channel.allocator.buffer(capacity: 256)
        guard (try? EventsFraming.encode(refusal, into: &buffer)) != nil else {
            context.close(promise: nil)
            return
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finished = true
        for session in attached { ingest.hub.uplinkDetached(session) }
        attached = []
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
