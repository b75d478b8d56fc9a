import NIOCore

/// One piece of a command's output, in the order the server sent it.
public struct SSHOutputChunk: Sendable, Equatable {
    public enum Stream: Sendable, Equatable { case stdout, stderr }
    public let stream: Stream
    public let bytes: ByteBuffer

    public init(stream: Stream, bytes: ByteBuffer) {
        self.stream = stream
        self.bytes = bytes
    }
}

/// A channel's stdout and stderr as one sequence of tagged chunks. One sequence, not two:
/// both share the channel's one SSH window, so a consumer draining stdout before stderr
/// would stall the command once stderr's unread bytes filled the window.
///
/// Backpressure: the session reads a channel only while fewer than `highWatermark` chunks
/// (each at most 32 KiB) wait here, so an idle consumer holds this buffer plus the
/// channel's SSH window (2 MiB), never more. The sequence ends after the server's EOF and
/// throws `SSHError` when the session dies first. Single consumer.
public struct SSHOutput: AsyncSequence, Sendable {
    public typealias Element = SSHOutputChunk
    typealias Producer = NIOThrowingAsyncSequenceProducer<
        SSHOutputChunk, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, OutputDemand
    >

    static let lowWatermark = 4
    static let highWatermark = 16

    let producer: Producer

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: Producer.AsyncIterator

        public mutating func next() async throws -> SSHOutputChunk? {
            try await base.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: producer.makeAsyncIterator())
    }
}

/// Tells the session loop when the consumer wants more output or went away. Called from
/// the consumer's task: it only posts to the loop.
final class OutputDemand: NIOAsyncSequenceProducerDelegate, @unchecked Sendable {
    private weak var core: SessionCore?
    private let channelID: Int

    init(core: SessionCore, channelID: Int) {
        self.core = core
        self.channelID = channelID
    }

    func produceMore() {
        guard let core else { return }
        let id = channelID
        core.execute { core.outputDemandChanged(channelID: id, demand: true) }
    }

    func didTerminate() {
        guard let core else { return }
        let id = channelID
        core.execute { core.outputTerminated(channelID: id) }
    }
}

/// How a command ended, as far as the server told us.
public enum SSHExit: Sendable, Equatable, CustomStringConvertible {
    /// The server reported this exit status.
    case exited(Int32)
    /// The command was killed by this signal (name without "SIG", e.g. "KILL").
    case signalled(String)
    /// No exit report reached us: we closed the channel first, or the server closed it
    /// without one. libssh2 1.10 reads an absent exit-status as 0, so a 0 is only believed
    /// when the server closed the channel in order after its EOF (OpenSSH always sends the
    /// exit report before that close).
    case unknown

    public var description: String {
        switch self {
        case .exited(let status): return "exit status \(status)"
        case .signalled(let name): return "signal \(name)"
        case .unknown: return "no exit status"
        }
    }
}
