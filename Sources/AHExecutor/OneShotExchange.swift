import AHControl
import AHQUIC
import NIOCore

/// One request and its answer on a fresh stream of `connection` (enrollment, renewal): the
/// `FrameRequester` is made on the stream's own loop, where it then lives.
enum OneShotExchange {
    static func send<Request: Encodable & Sendable, Response: Decodable & Sendable>(
        _ request: Request, over connection: QUICConnection, expecting: Response.Type = Response.self
    ) async throws -> Response {
        let promise = connection.eventLoop.makePromise(of: Response.self)
        connection.openStream { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(FrameRequester<Request, Response>(request: request, promise: promise))
            }
        }.whenFailure { promise.fail($0) }
        return try await promise.futureResult.get()
    }
}
