import AHLogFields
import AHAPI
import AHTunnel
import Logging
import NIOCore
import NIOHTTP1

/// One HTTP/1.1 connection: assembles bounded requests, answers them in order through an
/// `HTTPResponder`, and enforces the read timeout and size limits.
///
/// Runs on the channel's event loop; only `responder.respond` runs elsewhere (it is async and
/// may query the store), and its result hops back to the loop before anything is written.
/// Pipelined requests are answered strictly in order, one at a time; while one is being
/// answered, reads are held, so a client cannot queue unbounded work. A CONNECT pipelined
/// behind other requests waits for their answers, then is served like a first request.
/// A streamed response (SSE) is the last on its connection: input after it is discarded, and
/// the producer is cancelled when the client goes away.
final class HTTPConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum Work {
        case route(HTTPAPIRequest, keepAlive: Bool)
        /// A CONNECT head; the bytes after it wait in the decoder (bounded by `limiter`).
        case connect(HTTPRequestHead, any TunnelIngress)
        /// A refusal decided here (bad framing, too large): always closes the connection.
        case reply(HTTPAPIResponse)
    }

    private let responder: any HTTPResponder
    private let configuration: HTTPServerConfiguration
    private let logger: Logger

    /// The request being received.
    private var receiving: (head: HTTPRequestHead, body: ByteBuffer?)?
    /// Complete requests not yet answered (more than one only when pipelined).
    private var queue: [Work] = []
    private var responding = false
    /// Set once the stream can no longer be parsed as further requests (after a framing error,
    /// an oversized body, or a CONNECT head); later input is read and discarded.
    private var inputClosed = false
    private var readHeld = false
    /// From a CONNECT head until it is refused or joined: nothing more is read, so an
    /// unauthenticated client cannot make us hold more than `limiter` lets through.
    private var tunnelPending = false
    private let limiter: PreTunnelByteLimit
    /// The producer of a streamed response in progress; cancelled when the connection ends.
    private var streamTask: Task<Void, Never>?
    private var readTimer: Scheduled<Void>?
    private var active = false

    init(responder: any HTTPResponder, limiter: PreTunnelByteLimit, configuration: HTTPServerConfiguration, logger: Logger) {
        self.responder = responder
        self.limiter = limiter
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { becameActive(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if !active { becameActive(context: context) }
        context.fireChannelActive()
    }

    private func becameActive(context: ChannelHandlerContext) {
        active = true
        armReadTimer(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        active = false
        disarmReadTimer()
        queue.removeAll()
        streamTask?.cancel()
        streamTask = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        active = false
        disarmReadTimer()
        streamTask?.cancel()
        streamTask = nil
    }

    // MARK: Input

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !inputClosed else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if readTimer == nil { armReadTimer(context: context) }  // pipelined behind a response
            if head.method == .CONNECT {
                // Nothing after a CONNECT head is HTTP any more: either it becomes a tunnel or
                // the connection closes after the refusal.
                inputClosed = true
                disarmReadTimer()
                // Bytes after the head are tunnel bytes or discarded; either way the decoder
                // keeps them until then, so bound them from here on.
                limiter.arm()
                if let ingress = responder.tunnels {
                    tunnelPending = true
                    enqueue(.connect(head, ingress), context: context)
                } else {
                    enqueue(.route(request(head, body: nil, context: context), keepAlive: false), context: context)
                }
                return
            }
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > configuration.maxBodyBytes {
                refuseBody(context: context)
                return
            }
            receiving = (head, nil)
        case .body(var chunk):
            guard var current = receiving else { return }
            if (current.body?.readableBytes ?? 0) + chunk.readableBytes > configuration.maxBodyBytes {
                refuseBody(context: context)
                return
            }
            if current.body == nil { current.body = chunk } else { current.body!.writeBuffer(&chunk) }
            receiving = current
        case .end:
            guard let current = receiving else { return }
            receiving = nil
            disarmReadTimer()
            enqueue(.route(request(current.head, body: current.body, context: context), keepAlive: current.head.isKeepAlive),
                    context: context)
        }
    }

    // MARK: CONNECT

    /// Runs with `responding` set: reads stay held until the refusal is sent or the tunnel joined.
    private func connect(_ head: HTTPRequestHead, ingress: any TunnelIngress, context: ChannelHandlerContext) {
        let remote = context.channel.remoteAddress
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let target: ConnectTarget
        switch ConnectTarget.parse(head.uri) {
        case .success(let parsed): target = parsed
        case .failure(let error):
            let detail = "CONNECT target: \(error)"
            let refusal = ConnectBadRequest(givenName: error.givenName, port: error.port, remoteAddress: remote, detail: detail)
            Task {
                await ingress.refusedAsBadRequest(refusal)
                loop.execute {
                    let (handler, context) = bound.value
                    handler.refuseConnect(.problem(.badRequest(detail), closeConnection: true), context: context)
                }
            }
            return
        }
        let request = ConnectRequest(target: target, proxyAuthorization: head.headers.first(name: "proxy-authorization"),
                                     remoteAddress: remote)
        let limit = configuration.maxPreTunnelBytes
        Task {
            let outcome = await ingress.open(request)
            loop.execute {
                let (handler, context) = bound.value
                switch outcome {
                case .refused(let response):
                    handler.refuseConnect(response, context: context)
                case .accepted(let tunnel) where handler.limiter.overflowed:
                    // Bytes were dropped: joining would hand the executor a corrupted stream.
                    tunnel.abandoned()
                    let detail = "more than \(limit) bytes were sent after the CONNECT head before the tunnel was established"
                    let refusal = ConnectBadRequest(givenName: target.executor, port: target.port, remoteAddress: remote, detail: detail)
                    Task { await ingress.refusedAsBadRequest(refusal) }
                    handler.refuseConnect(.problem(.badRequest(detail), closeConnection: true), context: context)
                case .accepted(let tunnel):
                    handler.tunnelPending = false
                    handler.becomeTunnel(tunnel, context: context)
                }
            }
        }
    }

    /// Answers a CONNECT with an error and closes; the input is drained meanwhile (still
    /// through `limiter`, which stays armed, so draining holds nothing beyond its bound).
    private func refuseConnect(_ response: HTTPAPIResponse, context: ChannelHandlerContext) {
        tunnelPending = false
        send(response, keepAlive: false, context: context)
    }

    /// Hands the connection to the tunnel: the HTTP handlers leave, bytes the client sent after
    /// the head (kept by the decoder) go first, then everything flows raw both ways.
    private func becomeTunnel(_ tunnel: AcceptedTunnel, context: ChannelHandlerContext) {
        guard active else {
            tunnel.abandoned()
            return
        }
        let channel = context.channel
        do {
            let pipeline = context.pipeline.syncOperations
            // The decoder hands its leftover bytes to the next handler when it leaves: that
            // must be the prelude, which also keeps what arrives until the join.
            try pipeline.addHandler(TunnelPrelude(), position: .before(self))
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            pipeline.removeHandler(decoder, promise: nil)
            // The pre-tunnel bound has done its job: once joined, the tunnel's own
            // backpressure bounds what is held (left in place it would drop every byte past
            // the first 64 KiB of an upload).
            pipeline.removeHandler(limiter, promise: nil)
            let encoder = try pipeline.handler(type: HTTPResponseEncoder.self)
            pipeline.removeHandler(encoder, promise: nil)
        } catch {
            logger.error("cannot turn the connection into a tunnel", metadata: ["error": "\(error)"])
            tunnel.abandoned()
            context.close(promise: nil)
            return
        }
        // Written raw (the encoder is gone): a 2xx answer to CONNECT has no body framing.
        context.writeAndFlush(NIOAny(channel.allocator.buffer(string: "HTTP/1.1 200 Connection Established\r\n\r\n")), promise: nil)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        Tunnel.join(channel, tunnel.channel).whenComplete { result in
            switch result {
            case .success(let summary): tunnel.finished(summary)
            case .failure: tunnel.finished(TunnelTally.Summary(bytesForward: 0, bytesBackward: 0, clean: false, error: "join failed"))
            }
        }
    }

    private func refuseBody(context: ChannelHandlerContext) {
        receiving = nil
        inputClosed = true
        disarmReadTimer()
        enqueue(.reply(.problem(.payloadTooLarge("request body exceeds \(configuration.maxBodyBytes) bytes"), closeConnection: true)),
                context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let fromDecoder = error is HTTPParserError || error is ByteToMessageDecoderError
        if fromDecoder && inputClosed { return }  // the decoder repeats itself once in error state
        guard let parserError = error as? HTTPParserError else {
            logger.debug("closing connection after error", metadata: ["error": "\(error)"])
            context.close(promise: nil)
            return
        }
        inputClosed = true
        receiving = nil
        disarmReadTimer()
        let problem: Problem
        switch parserError {
        case .headerOverflow:
            problem = .headersTooLarge("request line and headers exceed \(configuration.maxRequestHeadBytes) bytes or \(configuration.maxHeaderCount) fields")
        default:
            problem = .badRequest("malformed HTTP/1.1 request (\(parserError))")
        }
        enqueue(.reply(.problem(problem, closeConnection: true)), context: context)
    }

    private func request(_ head: HTTPRequestHead, body: ByteBuffer?, context: ChannelHandlerContext) -> HTTPAPIRequest {
        HTTPAPIRequest(method: head.method, uri: head.uri, headers: head.headers, body: body,
                       remoteAddress: context.channel.remoteAddress)
    }

    // MARK: Answering

    private func enqueue(_ work: Work, context: ChannelHandlerContext) {
        queue.append(work)
        answerNext(context: context)
    }

    private func answerNext(context: ChannelHandlerContext) {
        guard active, !responding, !queue.isEmpty else { return }
        responding = true
        switch queue.removeFirst() {
        case .reply(let response):
            send(response, keepAlive: false, context: context)
        case .connect(let head, let ingress):
            connect(head, ingress: ingress, context: context)
        case .route(let request, let keepAlive):
            let responder = self.responder
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            Task {
                let response = await responder.respond(to: request)
                loop.execute {
                    let (handler, context) = bound.value
                    handler.logger.debug("request", metadata: ["method": "\(request.method)", "path": "\(request.path.prefix(200))",
                                                               "status": "\(response.status.code)"])
                    handler.send(response, keepAlive: keepAlive, context: context)
                }
            }
        }
    }

    private func send(_ response: HTTPAPIResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        guard active else { return }
        let body: [UInt8]
        switch response.content {
        case .full(let bytes): body = bytes
        case .stream(let stream):
            sendStream(response, stream, context: context)
            return
        }
        let close = response.closeConnection || !keepAlive
        var headers = response.headers
        headers.replaceOrAdd(name: "content-length", value: String(body.count))
        headers.replaceOrAdd(name: "connection", value: close ? "close" : "keep-alive")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))), promise: nil)
        if !body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        if close {
            finishAndClose(context: context)
            return
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        responding = false
        if queue.isEmpty {
            if receiving == nil { armReadTimer(context: context) }  // keep-alive idle limit
            releaseHeldRead(context: context)
        }
        answerNext(context: context)
    }

    /// Ends the response in progress, then closes the connection (lingering).
    private func finishAndClose(context: ChannelHandlerContext) {
        inputClosed = true
        queue.removeAll()
        releaseHeldRead(context: context)  // keep draining input until the peer goes
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            self.lingeringClose(context: context)
        }
    }

    /// Sends the head (chunked: no content-length), then runs the producer in a task whose
    /// writes hop onto this loop. The connection closes after the stream; meanwhile input is
    /// read and discarded, which is how a client that goes away is noticed at once.
    private func sendStream(_ response: HTTPAPIResponse, _ stream: HTTPResponseStream, context: ChannelHandlerContext) {
        var headers = response.headers
        headers.remove(name: "content-length")
        headers.replaceOrAdd(name: "connection", value: "close")
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))),
                              promise: nil)
        inputClosed = true
        queue.removeAll()
        releaseHeldRead(context: context)
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let writer = HTTPBodyWriter(loop: loop, writeOnLoop: { chunk in
            let (handler, context) = bound.value
            guard handler.active, handler.streamTask != nil else {
                return loop.makeFailedFuture(HTTPBodyWriterError.clientGone)
            }
            return context.writeAndFlush(handler.wrapOutboundOut(.body(.byteBuffer(chunk))))
        }, allocator: context.channel.allocator)
        let logger = self.logger
        streamTask = Task {
            do {
                try await stream.produce(writer)
            } catch is CancellationError, HTTPBodyWriterError.clientGone {
                // The client went away: nothing to report.
            } catch {
                logger.debug("streamed response ended with an error", metadata: ["error": "\(error)"])
            }
            loop.execute {
                let (handler, context) = bound.value
                guard handler.streamTask != nil else { return }
                handler.streamTask = nil
                handler.finishAndClose(context: context)
            }
        }
    }

    /// Closes our side first and discards what the peer still sends for a moment. Closing with
    /// unread input makes the kernel send RST, which can destroy the response we just wrote
    /// before the client reads it (e.g. the 431 for a head that was still arriving).
    private func lingeringClose(context: ChannelHandlerContext) {
        guard active else { return }
        context.close(mode: .output, promise: nil)
        disarmReadTimer()
        readTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(2)) {
            context.close(promise: nil)
        }
    }

    // MARK: Reads and the timeout

    func read(context: ChannelHandlerContext) {
        // Hold reads while answering, unless we only drain (input is discarded anyway); and
        // always while a CONNECT waits for its tunnel.
        if tunnelPending || ((responding || !queue.isEmpty) && !inputClosed) {
            readHeld = true
        } else {
            context.read()
        }
    }

    private func releaseHeldRead(context: ChannelHandlerContext) {
        guard readHeld else { return }
        readHeld = false
        context.read()
    }

    private func armReadTimer(context: ChannelHandlerContext) {
        readTimer?.cancel()
        let timeout = configuration.headerReadTimeout
        readTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            self.readTimer = nil
            guard !self.responding, self.queue.isEmpty else { return }  // we are the slow one
            self.logger.debug("closing connection: no complete request in time",
                              metadata: ["timeout": "\(timeout)", "remote": "\(context.channel.remoteAddress.hostPort)"])
            context.close(promise: nil)
        }
    }

    private func disarmReadTimer() {
        readTimer?.cancel()
        readTimer = nil
    }
}
