// TLS as a NIO channel handler: sits right after the TCP head of a pipeline, turns
// ciphertext from the socket into plaintext for the handlers after it and back, and maps
// TLS closure (close_notify) onto NIO half-closure. GnuTLS does the protocol work through
// GnuTLSSession's memory transport; everything runs on the channel's event loop.

internal import AHGnuTLS
internal import CGnuTLS
import Logging
import NIOCore

/// Fired as a user inbound event once the handshake has completed.
public struct TLSHandshakeCompleted: Sendable, Equatable {
    /// The ALPN protocol both sides agreed on, if any.
    public let alpn: String?
    /// The negotiated protocol version as GnuTLS names it, e.g. "TLS1.3".
    public let version: String

    public init(alpn: String?, version: String) {
        self.alpn = alpn
        self.version = version
    }
}

/// Outbound user event asking GnuTLSHandler for a TLS 1.3 key update (GnuTLS answers the
/// peer's updates by itself; this is how tests and long-lived tunnels start one). Internal
/// for now: reachable from tests through `@testable import`.
struct TLSKeyUpdateRequest {
    /// Also ask the peer to update its sending keys.
    var requestPeerUpdate: Bool
}

/// TLS 1.2/1.3 over a byte stream, server or client side.
///
/// - The handshake starts as soon as the channel is active. Plaintext written before it
///   completes is held and sent, in order, right after it.
/// - Reads follow demand: `read()` is passed on, and another read is issued only while the
///   handshake runs or when the data that arrived did not complete a record.
/// - `close(mode: .output)` sends close_notify, then half-closes TCP. A received
///   close_notify becomes `ChannelEvent.inputClosed` (or a close if the channel does not
///   allow remote half-closure); so does a TCP EOF without close_notify after the handshake
///   (logged at debug as an unexpected EOF: many HTTP clients just close).
/// - A failed handshake or record error fires a `TLSError` through `errorCaught` and closes
///   the channel. TLS 1.2 renegotiation is refused; TLS 1.3 key updates are handled.
public final class GnuTLSHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum Role {
        case server(TLSServerContext)
        case client(TLSClientContext, serverName: String)
    }

    private enum State {
        case idle          // channel not active yet
        case handshaking
        case active        // handshake done, records flow
        case closed        // failed, inactive or removed; the session is gone or going
    }

    /// Plaintext is delivered in buffers of about this size.
    private static let plaintextChunk = 64 * 1024
    /// Non-fatal GnuTLS results (warning alerts) tolerated in a row before giving up.
    private static let maxWarningsInARow = 16
    /// GNUTLS_E_AGAIN with ciphertext still buffered (post-handshake messages digested) in a
    /// row before waiting for the network anyway; a bound against a GnuTLS that stops
    /// consuming, far above what any sane peer sends in one burst.
    private static let maxSpuriousAgainInARow = 4096

    private let role: Role
    private let alpn: [String]
    private let logger: Logger

    private var state: State = .idle
    private var session: GnuTLSSession?

    private var pendingWrites = CircularBuffer<(ByteBuffer, EventLoopPromise<Void>?)>()
    private var flushAfterHandshake = false
    private var outputClosePending = false
    private var outputClosePromise: EventLoopPromise<Void>?

    private var outputClosed = false        // close_notify sent
    private var receivedCloseNotify = false
    private var inputClosed = false         // input end handled (close_notify or EOF)
    private var closeRequested = false      // the pipeline asked for a full close
    private var failed = false              // a TLSError has been reported

    private var spareBuffer: ByteBuffer?    // an empty plaintext buffer kept for the next read
    private var readRequested = false       // a read() from downstream not yet answered with plaintext
    private var deliveredPlaintext = false  // since the last channelReadComplete

    private init(role: Role, alpn: [String], logger: Logger) {
        self.role = role
        self.alpn = alpn
        self.logger = logger
    }

    /// A server-side handler presenting `context`'s certificate chain. `alpn` lists the
    /// protocols offered, in the server's order of preference.
    public static func server(context: TLSServerContext, alpn: [String] = [],
                              logger: Logger = Logger(label: "ah.tls")) -> GnuTLSHandler {
        GnuTLSHandler(role: .server(context), alpn: alpn, logger: logger)
    }

    /// A client-side handler. `serverName` is sent as SNI and the server certificate must
    /// match it; an IP literal (IPv6 with or without brackets) is matched against the
    /// certificate's IP SANs and not sent as SNI.
    public static func client(context: TLSClientContext, serverName: String, alpn: [String] = [],
                              logger: Logger = Logger(label: "ah.tls")) -> GnuTLSHandler {
        var name = serverName
        if name.hasPrefix("["), name.hasSuffix("]"), name.count > 2 {
            name = String(name.dropFirst().dropLast())
        }
        return GnuTLSHandler(role: .client(context, serverName: name), alpn: alpn, logger: logger)
    }

    // MARK: lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive {
            startHandshake(context: context)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        state = .closed
        failPending(ChannelError.ioOnClosedChannel)
        releaseSession()
    }

    public func channelActive(context: ChannelHandlerContext) {
        startHandshake(context: context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        let interruptedHandshake = (state == .handshaking) && !failed && !closeRequested
        let endedWithoutCloseNotify = (state == .active) && !receivedCloseNotify && !inputClosed && !closeRequested
        state = .closed
        failPending(ChannelError.ioOnClosedChannel)
        releaseSession()
        if interruptedHandshake {
            logger.debug("TLS handshake interrupted: the connection closed")
            context.fireErrorCaught(TLSError.unexpectedEOF)
        } else if endedWithoutCloseNotify {
            logger.debug("TLS: unexpected EOF (connection closed without close_notify)")
        }
        context.fireChannelInactive()
    }

    // MARK: inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state == .handshaking || state == .active, !receivedCloseNotify, let session else {
            return  // nothing can use ciphertext now
        }
        var buffer = unwrapInboundIn(data)
        session.appendInbound(&buffer)
        if state == .handshaking {
            runHandshake(context: context)
        }
        if state == .active {
            decryptAvailable(context: context)
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if deliveredPlaintext {
            deliveredPlaintext = false
            context.fireChannelReadComplete()
        } else if state == .handshaking || (state == .active && readRequested && !inputClosed) {
            // The bytes that arrived completed no record: keep the handshake / record moving.
            context.read()
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let channelEvent = event as? ChannelEvent, channelEvent == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // TCP EOF.
        switch state {
        case .idle, .handshaking:
            fail(context: context, error: .unexpectedEOF, alertFor: nil)
        case .active:
            peerClosedInput(context: context, cleanly: false)
        case .closed:
            break
        }
    }

    // MARK: outbound

    public func read(context: ChannelHandlerContext) {
        readRequested = true
        context.read()
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let plaintext = unwrapOutboundIn(data)
        switch state {
        case .idle, .handshaking:
            guard !outputClosePending else {
                promise?.fail(ChannelError.outputClosed)
                return
            }
            pendingWrites.append((plaintext, promise))
        case .active:
            guard !outputClosed else {
                promise?.fail(ChannelError.outputClosed)
                return
            }
            encryptAndWrite(context: context, plaintext: plaintext, promise: promise)
        case .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    public func flush(context: ChannelHandlerContext) {
        switch state {
        case .idle, .handshaking:
            flushAfterHandshake = true
        case .active, .closed:
            context.flush()
        }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch mode {
        case .input:
            context.close(mode: .input, promise: promise)
        case .output:
            switch state {
            case .idle, .handshaking:
                guard !outputClosePending else {
                    promise?.fail(ChannelError.outputClosed)
                    return
                }
                outputClosePending = true
                outputClosePromise = promise
            case .active:
                closeOutput(context: context, promise: promise)
            case .closed:
                promise?.fail(ChannelError.alreadyClosed)
            }
        case .all:
            closeRequested = true
            if state == .active && !outputClosed {
                // Best effort: the close_notify goes out with whatever is flushed before the close.
                outputClosed = true
                session?.sendCloseNotify()
                writeCiphertext(context: context, flush: true)
            }
            failPending(ChannelError.ioOnClosedChannel)
            context.close(mode: .all, promise: promise)
        }
    }

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let request = event as? TLSKeyUpdateRequest else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        guard state == .active, !outputClosed, let session else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let rv = session.updateKeys(requestPeer: request.requestPeerUpdate)
        guard rv >= 0 else {
            promise?.fail(TLSError.recordFailed(reason: "key update: \(GnuTLSError.reason(rv))"))
            return
        }
        if let ciphertext = session.takeOutbound() {
            context.writeAndFlush(wrapOutboundOut(ciphertext), promise: promise)
        } else {
            promise?.succeed(())
        }
    }

    // MARK: handshake

    private func startHandshake(context: ChannelHandlerContext) {
        guard state == .idle else { return }
        do {
            switch role {
            case .server(let tls):
                session = try GnuTLSSession(isServer: true, context: tls.storage, serverName: nil,
                                            alpn: alpn, allocator: context.channel.allocator)
            case .client(let tls, let serverName):
                session = try GnuTLSSession(isServer: false, context: tls.storage, serverName: serverName,
                                            alpn: alpn, allocator: context.channel.allocator)
            }
        } catch {
            fail(context: context, error: error as? TLSError ?? .configuration("\(error)"), alertFor: nil)
            return
        }
        state = .handshaking
        runHandshake(context: context)
        if state == .handshaking {
            context.read()  // the handshake needs the peer's bytes whatever the pipeline asks for
        }
    }

    private func runHandshake(context: ChannelHandlerContext) {
        var warnings = 0
        var spurious = 0
        while state == .handshaking, let session {
            let rv = session.handshake()
            writeCiphertext(context: context, flush: true)
            guard state == .handshaking else { return }  // the flush failed and closed the channel
            switch rv {
            case GNUTLS_E_SUCCESS:
                handshakeCompleted(context: context, session: session)
                return
            case GNUTLS_E_AGAIN, GNUTLS_E_INTERRUPTED:
                if !session.starved && spurious < Self.maxSpuriousAgainInARow {
                    spurious += 1
                    continue  // a message was digested; more may be buffered
                }
                return  // waiting for the peer
            default:
                if gnutls_error_is_fatal(rv) == 0 && warnings < Self.maxWarningsInARow {
                    warnings += 1
                    continue
                }
                fail(context: context, error: session.handshakeError(rv), alertFor: rv)
                return
            }
        }
    }

    private func handshakeCompleted(context: ChannelHandlerContext, session: GnuTLSSession) {
        state = .active
        let info = TLSHandshakeCompleted(alpn: session.negotiatedALPN, version: session.protocolVersion)
        logger.debug("TLS handshake completed", metadata: [
            "tls.version": "\(info.version)", "tls.alpn": "\(info.alpn ?? "-")",
        ])
        // Plaintext written during the handshake goes first, in order.
        while state == .active, let (plaintext, promise) = pendingWrites.popFirst() {
            encryptAndWrite(context: context, plaintext: plaintext, promise: promise)
        }
        if flushAfterHandshake, state == .active {
            flushAfterHandshake = false
            context.flush()
        }
        if outputClosePending, state == .active {
            outputClosePending = false
            let promise = outputClosePromise
            outputClosePromise = nil
            closeOutput(context: context, promise: promise)
        }
        if state == .active {
            context.fireUserInboundEventTriggered(info)
        }
    }

    // MARK: records

    /// Decrypts every complete record buffered, then delivers the plaintext.
    private func decryptAvailable(context: ChannelHandlerContext) {
        guard state == .active, !receivedCloseNotify, let session else { return }
        var delivered: [ByteBuffer] = []
        var current = spareBuffer ?? context.channel.allocator.buffer(capacity: 0)
        spareBuffer = nil
        var failure: (TLSError, Int32)?
        var warnings = 0
        var spurious = 0

        receiving: while true {
            if current.readableBytes >= Self.plaintextChunk {
                delivered.append(current)
                current = context.channel.allocator.buffer(capacity: 0)
            }
            let rv = session.receive(into: &current)
            if rv > 0 {
                warnings = 0
                spurious = 0
                continue
            }
            if rv == 0 {
                receivedCloseNotify = true
                break
            }
            let code = Int32(truncatingIfNeeded: rv)
            switch code {
            case GNUTLS_E_AGAIN, GNUTLS_E_INTERRUPTED:
                if !session.starved && spurious < Self.maxSpuriousAgainInARow {
                    spurious += 1
                    continue  // a post-handshake message was digested; records may follow
                }
                break receiving
            case GNUTLS_E_REHANDSHAKE:
                failure = (.renegotiationRefused, code)
                break receiving
            default:
                if gnutls_error_is_fatal(code) == 0 && warnings < Self.maxWarningsInARow {
                    warnings += 1
                    continue
                }
                failure = (session.recordError(code), code)
                break receiving
            }
        }
        if current.readableBytes > 0 {
            delivered.append(current)
        } else {
            spareBuffer = current  // nothing decrypted (partial record): reuse it next time
        }

        writeCiphertext(context: context, flush: true)  // e.g. a TLS 1.3 KeyUpdate answer
        if !delivered.isEmpty {
            readRequested = false
            deliveredPlaintext = true
            for buffer in delivered where state != .closed {
                context.fireChannelRead(wrapInboundOut(buffer))
            }
        }
        if let (error, code) = failure {
            fail(context: context, error: error, alertFor: code)
        } else if receivedCloseNotify {
            peerClosedInput(context: context, cleanly: true)
        }
    }

    private func encryptAndWrite(context: ChannelHandlerContext, plaintext: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard let session else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        var plaintext = plaintext
        var retries = 0
        while plaintext.readableBytes > 0 {
            let rv = plaintext.withUnsafeReadableBytes { session.send($0) }
            if rv > 0 {
                plaintext.moveReaderIndex(forwardBy: rv)
                retries = 0
                continue
            }
            let code = Int32(truncatingIfNeeded: rv)
            // The memory transport always accepts, so AGAIN should not happen; GnuTLS wants
            // the same call repeated if it does.
            if (code == GNUTLS_E_AGAIN || code == GNUTLS_E_INTERRUPTED) && retries < 4 {
                retries += 1
                continue
            }
            let error = session.recordError(code)
            promise?.fail(error)
            fail(context: context, error: error, alertFor: nil)
            return
        }
        if let ciphertext = session.takeOutbound() {
            context.write(wrapOutboundOut(ciphertext), promise: promise)
        } else {
            promise?.succeed(())
        }
    }

    /// Hands queued ciphertext (handshake flights, alerts) to the channel.
    private func writeCiphertext(context: ChannelHandlerContext, flush: Bool) {
        guard let ciphertext = session?.takeOutbound() else { return }
        context.write(wrapOutboundOut(ciphertext), promise: nil)
        if flush {
            context.flush()
        }
    }

    // MARK: closure

    private func closeOutput(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        guard !outputClosed else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        outputClosed = true
        session?.sendCloseNotify()
        writeCiphertext(context: context, flush: true)
        context.close(mode: .output, promise: promise)
    }

    /// The peer will send no more: close_notify (`cleanly`) or TCP EOF after the handshake.
    private func peerClosedInput(context: ChannelHandlerContext, cleanly: Bool) {
        guard !inputClosed else { return }
        inputClosed = true
        if !cleanly {
            logger.debug("TLS: unexpected EOF (TCP input closed without close_notify); treating it as end of input")
        }
        let halfClosureAllowed = (try? context.channel.syncOptions?.getOption(ChannelOptions.allowRemoteHalfClosure)) ?? false
        if halfClosureAllowed {
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        } else {
            close(context: context, mode: .all, promise: nil)
        }
    }

    /// Reports `error`, sends an alert for GnuTLS error `alertFor` if given, and closes.
    private func fail(context: ChannelHandlerContext, error: TLSError, alertFor code: Int32?) {
        guard !failed, state != .closed else { return }
        failed = true
        logger.debug("TLS connection failed", metadata: ["error": "\(error)"])
        if let code {
            session?.sendAlert(for: code)
            writeCiphertext(context: context, flush: true)
        }
        state = .closed
        failPending(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    private func failPending(_ error: Error) {
        while let (_, promise) = pendingWrites.popFirst() {
            promise?.fail(error)
        }
        if let promise = outputClosePromise {
            outputClosePromise = nil
            promise.fail(error)
        }
        outputClosePending = false
    }

    private func releaseSession() {
        session?.close()
        session = nil
        spareBuffer = nil
    }
}

@available(*, unavailable)
extension GnuTLSHandler: Sendable {}
