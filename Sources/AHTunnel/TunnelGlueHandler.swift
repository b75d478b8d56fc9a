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
/// executes directly when already on the partner's loop. All state is confined to the
/// handler's own loop.
final class TunnelGlueHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Bytes handed to the partner but not yet written into its channel (only non-zero when
    /// the two loops differ). Above this, reading pauses.
    static let inFlightLimit = 256 * 1024

    let loop: EventLoop
    let tally: TunnelTally
    let direction: TunnelTally.Direction
    private let abort: (Channel) -> Void
    var partner: TunnelGlueHandler!
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

    init(loop: EventLoop, tally: TunnelTally, direction: TunnelTally.Direction, early: [ByteBuffer],
         abort: @escaping (Channel) -> Void) {
        self.loop = loop
        self.tally = tally
        self.direction = direction
        self.early = early
        self.abort = abort
    }

    /// Runs `body` on this handler's loop (directly when already there).
    func run(_ body: @escaping () -> Void) {
        if loop.inEventLoop { body() } else { loop.execute(body) }
    }

    // MARK: Lifecycle

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
        let partner = self.partner!
        partner.run { partner.partnerClosed(abruptly: !clean) }
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
            context.eventLoop.execute { [self] in
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
        let partner = self.partner!
        partner.run { partner.writeOut(buffers, count: count) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        sendBatch()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            sendBatch()
            inputEnded = true
            let partner = self.partner!
            partner.run { partner.endOutput() }
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
        guard context != nil || closed else {
            queuedOut.append(contentsOf: buffers)
            return
        }
        guard let context, !closed, !outputEnded else {
            // Nowhere to put it: the tunnel is ending; keep the partner's accounting right.
            let partner = self.partner!
            partner.run { partner.partnerProgress(written: count, writable: false) }
            return
        }
        for buffer in buffers { context.write(wrapOutboundOut(buffer), promise: nil) }
        context.flush()
        reportProgress(written: count)
    }

    private func reportProgress(written: Int) {
        let writable = context?.channel.isWritable ?? false
        let partner = self.partner!
        partner.run { partner.partnerProgress(written: written, writable: writable) }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        reportProgress(written: 0)
        context.fireChannelWritabilityChanged()
    }

    /// The partner's input ended: finish our output after what is queued.
    fileprivate func endOutput() {
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
