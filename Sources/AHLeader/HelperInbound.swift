import AHSSH
import Logging

/// The follower helper's stdout as the `HelperClient` reads it, straight from the exec
/// channel: each `next()` pulls the channel's next chunk, so the helper connection reads only
/// as fast as it handles frames (the channel's backpressure reaches sshd) and no task or
/// buffer sits between the two. The helper's stderr (its log) goes to the leader's log.
/// A channel error ends the sequence, like the channel's end.
struct HelperInbound: AsyncSequence, Sendable {
    typealias Element = [UInt8]
    let output: SSHOutput
    let logger: Logger

    struct AsyncIterator: AsyncIteratorProtocol {
        var chunks: SSHOutput.AsyncIterator
        let logger: Logger

        mutating func next() async -> [UInt8]? {
            do {
                while let chunk = try await chunks.next() {
                    if chunk.stream == .stdout { return Array(chunk.bytes.readableBytesView) }
                    logger.debug("follower helper: \(String(buffer: chunk.bytes))")
                }
            } catch {
                logger.debug("follower helper channel ended", metadata: ["error": "\(error)"])
            }
            return nil
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(chunks: output.makeAsyncIterator(), logger: logger)
    }
}
