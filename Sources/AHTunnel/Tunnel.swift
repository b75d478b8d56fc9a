import Foundation
import NIOCore

/// Joins two byte channels into a tunnel: every hop of an SSH session through ah (client TCP ⇄
/// QUIC stream at the access point, QUIC stream ⇄ sshd's TCP at the executor, stdio ⇄ TCP in
/// `ah connect`).
///
///     let done = Tunnel.join(tcpChannel, quicStream)   // completes when both are closed
///
/// Both channels must be active, carry `ByteBuffer`s at the end of their pipelines, and may
/// be on different event loops. Remote half-closure is switched on for both, so an end of
/// input travels through as an end of output on the other side (`ssh` relies on that for
/// `scp` and for exit statuses).
public enum Tunnel {
    /// Waits (polling: tunnels end on other event loops) until `openCount()` is 0, `grace`
    /// has passed or the task is cancelled; returns how many are still open. The shutdown
    /// grace period of both the access point and the executor.
    public static func waitForDrain(grace: TimeInterval, openCount: () -> Int) async -> Int {
        let deadline = Date().addingTimeInterval(grace)
        while openCount() > 0, Date() < deadline, !Task.isCancelled {
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
        return openCount()
    }

    /// Bytes that arrived before the join and sit in a `TunnelPrelude` in either pipeline go
    /// through first.
    ///
    /// - Parameters:
    ///   - early: bytes already read from `first`, sent to `second` before anything else.
    ///   - abortFirst/abortSecond: how to end each side after a failure on the other, so the
    ///     far end sees an error rather than a clean end (e.g. RESET_STREAM on a QUIC stream).
    ///     Default: close.
    /// - Returns: the tally (bytes each way, errors), completed when both channels are closed.
    public static func join(_ first: Channel, _ second: Channel, early: [ByteBuffer] = [],
                            abortFirst: @escaping @Sendable (Channel) -> Void = { $0.close(promise: nil) },
                            abortSecond: @escaping @Sendable (Channel) -> Void = { $0.close(promise: nil) })
        -> EventLoopFuture<TunnelTally.Summary> {
        let tally = TunnelTally()
        let boxA = NIOLoopBoundBox.makeEmptyBox(valueType: TunnelGlueHandler.self, eventLoop: first.eventLoop)
        let boxB = NIOLoopBoundBox.makeEmptyBox(valueType: TunnelGlueHandler.self, eventLoop: second.eventLoop)
        // Both handlers exist (each made on its own loop) before either is added, so each side
        // queues what its partner sends until it is in its own pipeline and the two additions
        // (possibly on two loops) need no ordering beyond this chain.
        let made = first.eventLoop.submit {
            boxA.value = TunnelGlueHandler(own: boxA, partner: boxB, tally: tally, direction: .forward, early: early, abort: abortFirst)
        }.and(second.eventLoop.submit {
            boxB.value = TunnelGlueHandler(own: boxB, partner: boxA, tally: tally, direction: .backward, early: [], abort: abortSecond)
        })
        let added = made
            .flatMap { _ in first.setOption(ChannelOptions.allowRemoteHalfClosure, value: true) }
            .and(second.setOption(ChannelOptions.allowRemoteHalfClosure, value: true))
            .flatMap { _ in Self.attach(boxA, to: first) }
            .flatMap { Self.attach(boxB, to: second) }
        let done = added.flatMap { first.closeFuture.and(second.closeFuture) }
            .map { _ in tally.summary }
        return done.flatMapErrorThrowing { error in
            // A handler that never made it into a pipeline is never removed from one: empty both
            // boxes so the pair does not keep itself alive (both channels are closing anyway).
            first.eventLoop.execute { boxA.value = nil }
            second.eventLoop.execute { boxB.value = nil }
            // A side that was already closed when we tried to attach: end the other one too.
            first.close(promise: nil)
            second.close(promise: nil)
            var summary = tally.summary
            summary.clean = false
            summary.error = summary.error ?? "\(error)"
            return summary
        }
    }

    /// Puts the handler from `box` into `channel`'s pipeline, on its loop.
    private static func attach(_ box: NIOLoopBoundBox<TunnelGlueHandler?>, to channel: Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.submit {
            guard let handler = box.value else { throw ChannelError.ioOnClosedChannel }
            try channel.pipeline.syncOperations.addHandler(handler)
        }
    }
}
