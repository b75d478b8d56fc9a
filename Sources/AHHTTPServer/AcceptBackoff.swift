#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOCore

/// Sits on the listening channel and pauses accepting for a moment when `accept` fails for
/// lack of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM).
///
/// NIO reports such a failure as `errorCaught` and keeps the listener registered with its
/// read still pending, so the waiting connection makes the socket readable again at once and
/// the loop retries `accept` in a tight circle: one core at 100 % while nothing gets better.
/// (Withholding `read()`, as NIO's `AcceptBackoffHandler` does, does not help: the failed
/// accept leaves the read pending, so none is asked for.) Turning `autoRead` off takes the
/// listener out of the poll set until the timer turns it on again; connections wait in the
/// kernel's backlog meanwhile. Logged once per episode (an episode ends with a successful
/// accept).
final class AcceptBackoff: ChannelInboundHandler {
    typealias InboundIn = Channel
    typealias InboundOut = Channel

    private let pause: TimeAmount
    private let logger: Logger
    private var paused = false
    private var inEpisode = false
    private var resume: Scheduled<Void>?

    init(pause: TimeAmount, logger: Logger) {
        self.pause = pause
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if inEpisode {
            inEpisode = false
            logger.notice("accepting connections again")
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let io = error as? IOError, [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(io.errnoCode) else {
            context.fireErrorCaught(error)
            return
        }
        if !inEpisode {
            inEpisode = true
            logger.error("cannot accept connections: \(String(cString: strerror(io.errnoCode)).lowercased()); pausing accepts for \(pause.nanoseconds / 1_000_000) ms at a time until it recovers")
        }
        guard !paused else { return }
        paused = true
        setAutoRead(false, context: context)
        resume = context.eventLoop.assumeIsolated().scheduleTask(in: pause) {
            self.paused = false
            self.resume = nil
            self.setAutoRead(true, context: context)
        }
    }

    private func setAutoRead(_ on: Bool, context: ChannelHandlerContext) {
        do {
            try context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: on)
        } catch {
            logger.error("cannot \(on ? "resume" : "pause") accepting connections: \(error)")
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        resume?.cancel()
        resume = nil
    }
}
