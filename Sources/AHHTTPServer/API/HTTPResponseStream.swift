import NIOCore

/// The body of a streamed response: a producer that writes chunks as they become available
/// (an event stream waits for events between writes).
///
/// The producer runs in its own task. `HTTPBodyWriter.write` returns once the chunk reached
/// the socket, so a client that reads slowly slows the producer down instead of filling the
/// server's memory. When the client goes away the task is cancelled and the next (or the
/// pending) `write` throws `HTTPBodyWriterError.clientGone`; returning (or throwing) ends the
/// response and closes the connection.
public struct HTTPResponseStream: Sendable {
    public let produce: @Sendable (HTTPBodyWriter) async throws -> Void

    public init(_ produce: @escaping @Sendable (HTTPBodyWriter) async throws -> Void) {
        self.produce = produce
    }

    /// Each element of `chunks` is written as it is produced, with the writer's backpressure.
    public init<Chunks: AsyncSequence & Sendable>(chunks: Chunks) where Chunks.Element == ByteBuffer {
        self.produce = { writer in
            for try await chunk in chunks {
                try await writer.write(chunk)
            }
        }
    }
}

public enum HTTPBodyWriterError: Error, Equatable, CustomStringConvertible {
    /// The connection closed (or the response was ended) before the chunk could be written.
    case clientGone

    public var description: String { "the client closed the connection" }
}

/// Writes chunks of a streamed response onto its connection, from any task.
public struct HTTPBodyWriter: Sendable {
    let loop: any EventLoop
    /// Writes one chunk on the loop and completes when it reached the socket.
    let writeOnLoop: @Sendable (ByteBuffer) -> EventLoopFuture<Void>
    public let allocator: ByteBufferAllocator

    /// Writes `chunk` and waits until the socket took it: at most one chunk per response is
    /// ever queued in the server.
    public func write(_ chunk: ByteBuffer) async throws {
        try Task.checkCancellation()
        guard chunk.readableBytes > 0 else { return }  // an empty chunk would end chunked framing
        let write = writeOnLoop
        do {
            try await loop.flatSubmit { write(chunk) }.get()
        } catch {
            throw HTTPBodyWriterError.clientGone
        }
    }

    public func write(_ text: String) async throws {
        try await write(allocator.buffer(string: text))
    }
}
