import AHTLS
import NIOCore
import NIOHTTP1

/// Gathers one HTTP response into a promise; any end of the connection before `.end` fails it.
final class ResponseCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<HTTPAPIClientResponse>
    private let maxBodyBytes: Int
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []
    private var done = false

    init(promise: EventLoopPromise<HTTPAPIClientResponse>, maxBodyBytes: Int) {
        self.promise = promise
        self.maxBodyBytes = maxBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body(let chunk):
            guard body.count + chunk.readableBytes <= maxBodyBytes else {
                fail(.responseTooLarge(limit: maxBodyBytes), context: context)
                return
            }
            body.append(contentsOf: chunk.readableBytesView)
        case .end:
            guard let head else {
                fail(.malformedResponse("body without a status line"), context: context)
                return
            }
            done = true
            promise.succeed(HTTPAPIClientResponse(status: head.status, headers: head.headers, body: body))
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is TLSError {
            // No trusted connection is no connection: callers report "not reachable".
            fail(.connectionFailed("TLS: \(error)"), context: context)
        } else {
            fail(.malformedResponse("\(error)"), context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            promise.fail(HTTPAPIClientError.malformedResponse("the connection closed before a complete response"))
        }
        context.fireChannelInactive()
    }

    private func fail(_ error: HTTPAPIClientError, context: ChannelHandlerContext) {
        guard !done else { return }
        done = true
        promise.fail(error)
        context.close(promise: nil)
    }
}
