import NIOCore

/// One end of a tunnel: sits last in its channel's pipeline and hands every byte it reads to
/// its partner, which writes them into the other channel.
///
/// Backpressure: this end stops reading (it withholds `read()`) while the partner's channel
/// is not writable or while too many bytes are on their way to it, so a slow receiver slows
/// the sender down to the TCP/QUIC flow control on the far side instead of filling memory.
/// Half-close: end of input here becomes `close(mode: .output)` there, after queued bytes.
///
/// The two channels may live on different event loops (an accepted TCP connection and a
/// QUIC stream); every call into the partner therefore goes through `partner.run`, which
/// reaches it through a `NIOLoopBoundBox` on the partner's loop (directly when already
/// there). Only Sendable values (buffers, counts, flags) cross. All state is confined to the
/// handler's own loop.
final class TunnelGlueHandler: ChannelDuplexHandler, RemovableChannelHandler {
    /// The way to the other end: its box on its loop. Both boxes are filled before either
    /// handler joins its pipeline, so the partner is always there to queue what arrives early;
    /// a box is emptied when its handler leaves (breaking the cycle), and calls then lapse.
    struct Partner: Sendable {
        let box: NIOLoopBoundBox<TunnelGlueHandler?>

        func run(_ body: @escaping @Sendable (TunnelGlueHandler) -> Void) {
            let loop = box.eventLoop
            if loop.inEventLoop {
                if let handler = box.value { body(handler) }
            } else {
                loop.execute { if let handler = box.value { body(handler) } }
            }
        }
    }

    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Bytes handed to the partner but not yet written into its channel (only non-zero when
    /// the two loops differ). Above this, reading pauses.
    static let inFlightLimit = 256 * 1024

    let loop: EventLoop
    let tally: TunnelTally
    let direction: TunnelTally.Direction
    private let abort: @Sendable (Channel) -> Void
    private let partner: Partner
    /// This handler's own box, emptied when it leaves the pipeline.
    private let own: NIOLoopBoundBox<TunnelGlueHandler?>
    private var context: ChannelHandlerContext?

    private var partnerWritable = true
    private var inFlight = 0
    private var readHeld = false
    private var flushPending = false
    /// Read since the last hand-over to the partner.
    private var batch: [ByteBuffer] = []
    private var batchBytes = 0
    private var errored = false
    /// Bytes that arrived before the partner was attached (e.g. sent right behind a CONNECT).
    private var early: [ByteBuffer]

    private(set) var inputEnded = false
    private var outputEnded = false
    private var closed = false
    /// What the partner sent or did before this handler was in its pipeline.
    private var queuedOut: [ByteBuffer] = []
    private var queuedEndOutput = false
    private var queuedPartnerClosed: Bool?

    /// Created on `own`'s loop (the channel's), which it then lives in.
    init(own: NIOLoopBoundBox<TunnelGlueHandler?>, partner: NIOLoopBoundBox<TunnelGlueHandler?>, tally: TunnelTally,
         direction: TunnelTally.Direction, early: [ByteBuffer], abort: @escaping @Sendable (Channel) -> Void) {
        self.loop = own.eventLoop
        self.own = own
        self.partner = Partner(box: partner)
        self.tally = tally
        self.direction = direction
        self.early = early
        self.abort = abort
        loop.assertInEventLoop()
    }

    // MARK: Lifecycle

    func handlerRemoved(context: ChannelHandlerContext) {
        own.value = nil
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        var pending = early
        early = []
        var endedBeforeJoin = false
        if let prelude = try? context.pipeline.syncOperations.context(handlerType: TunnelPrelude.self),
           let handler = prelude.handler as? TunnelPrelude {
            let taken = handler.takeAll(context: prelude)
            pending += taken.bytes
            endedBeforeJoin = taken.inputEnded
        }
        if !pending.isEmpty {
            batch.append(contentsOf: pending)
            batchBytes += pending.reduce(0) { $0 + $1.readableBytes }
            sendBatch()
        }
        if endedBeforeJoin { userInboundEventTriggered(context: context, event: ChannelEvent.inputClosed) }
        // What the partner did while we were not here yet.
        let queued = queuedOut
        queuedOut = []
        if !queued.isEmpty { writeOut(queued, count: queued.reduce(0) { $0 + $1.readableBytes }) }
        if queuedEndOutput { endOutput() }
        if let abruptly = queuedPartnerClosed { partnerClosed(abruptly: abruptly) }
        if !context.channel.isActive {
            // The channel went away before we were attached.
            channelInactive(context: context)
            return
        }
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        guard !closed else { return }
        sendBatch()
        closed = true
        // Orderly when it ended through FIN in either direction and no error was seen (NIO
        // closes without an inputClosed event when the input ends after our output did).
        let clean = !errored && (inputEnded || outputEnded)
        partner.run { $0.partnerClosed(abruptly: !clean) }
        tally.sideClosed(cleanly: clean)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        errored = true
        tally.noteError("\(error)")
        abortNow()
    }

    // MARK: Inbound: our channel → partner

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        batchBytes += buffer.readableBytes
        batch.append(buffer)
        // Not every read is followed by channelReadComplete (a decoder leaving the pipeline
        // forwards its leftover bytes without one), so make sure the batch goes anyway.
        if !flushPending {
            flushPending = true
            context.eventLoop.assumeIsolated().execute { [self] in
                if flushPending { sendBatch() }
            }
        }
    }

    /// Hands everything read since the last batch to the partner in one hop: one closure,
    /// one tally update and one flush per read cycle rather than per buffer (a QUIC stream
    /// delivers a buffer per packet).
    private func sendBatch() {
        flushPending = false
        guard !batch.isEmpty else { return }
        let buffers = batch
        let count = batchBytes
        batch = []
        batchBytes = 0
        tally.add(count, direction)
        inFlight += count
        partner.run { $0.writeOut(buffers, count: count) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        sendBatch()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            sendBatch()
            inputEnded = true
            partner.run { $0.endOutput() }
            if outputEnded { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func read(context: ChannelHandlerContext) {
        if partnerWritable && inFlight < Self.inFlightLimit {
            context.read()
        } else {
            readHeld = true
        }
    }

    /// From the partner: its channel's writability or its progress on our bytes changed.
    fileprivate func partnerProgress(written: Int, writable: Bool) {
        loop.assertInEventLoop()
        inFlight -= written
        partnerWritable = writable
        if readHeld, partnerWritable, inFlight < Self.inFlightLimit, let context {
            readHeld = false
            context.read()
        }
    }

    // MARK: Outbound: partner → our channel

    /// Bytes from the partner: written and flushed, then progress reported once.
    fileprivate func writeOut(_ buffers: [ByteBuffer], count: Int) {
        loop.assertInEventLoop()
        guard context != nil || closed else {
            queuedOut.append(contentsOf: buffers)
            return
        }
        guard let context, !closed, !outputEnded else {
            // Nowhere to put it: the tunnel is ending; keep the partner's accounting right.
            partner.run { $0.partnerProgress(written: count, writable: false) }
            return
        }
        for buffer in buffers { context.write(wrapOutboundOut(buffer), promise: nil) }
        context.flush()
        reportProgress(written: count)
    }

    private func reportProgress(written: Int) {
        let writable = context?.channel.isWritable ?? false
        partner.run { $0.partnerProgress(written: written, writable: writable) }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        reportProgress(written: 0)
        context.fireChannelWritabilityChanged()
    }

    /// The partner's input ended: finish our output after what is queued.
    fileprivate func endOutput() {
        loop.assertInEventLoop()
        guard context != nil || closed else { queuedEndOutput = true; return }
        guard let context, !closed, !outputEnded else { return }
        outputEnded = true
        context.flush()
        let channel = context.channel
        let inputEnded = self.inputEnded
        context.close(mode: .output).whenComplete { result in
            // A channel that cannot half-close (or already closed its input) closes entirely.
            if case .failure = result { channel.close(promise: nil) } else if inputEnded { channel.close(promise: nil) }
        }
    }

    /// The partner's channel is gone. After a clean end our output is finished gracefully
    /// (queued bytes still go out) and the channel closed; after an abrupt one we abort too.
    fileprivate func partnerClosed(abruptly: Bool) {
        loop.assertInEventLoop()
        partnerWritable = true
        inFlight = 0
        guard context != nil || closed else { queuedPartnerClosed = abruptly; return }
        guard let context, !closed else { return }
        if abruptly {
            abortNow()
            return
        }
        if !outputEnded {
            outputEnded = true
            context.flush()
            let channel = context.channel
            context.close(mode: .output).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    private func abortNow() {
        guard let context, !closed else { return }
        abort(context.channel)
    }
}
