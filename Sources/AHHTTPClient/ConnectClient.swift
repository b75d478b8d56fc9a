import AHAPI
import AHTunnel
import Foundation
import NIOCore
import NIOPosix

/// The client side of a tunnel through an access point: `CONNECT NODE:PORT` with the user's
/// token as `Proxy-Authorization: Bearer`, and on 200 a channel whose bytes are the
/// executor's sshd (what `ah connect` joins to its stdin/stdout).
public struct ConnectClient: Sendable {
    public let server: APIServerURL
    public let group: any EventLoopGroup
    /// Connect plus the proxy's answer (which includes the executor dialling its sshd).
    public var timeout: TimeAmount = .seconds(30)
    /// Adds TLS (client side) to a fresh channel for https:// servers; nil for http://.
    public var tls: (@Sendable (Channel) throws -> Void)?

    public init(server: APIServerURL, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.server = server
        self.group = group
    }

    /// A connected tunnel to `executor:port`, ready for `Tunnel.join`. Throws
    /// `ConnectClientError` (with the proxy's status and detail on refusal).
    public func open(executor: String, port: Int, token: String, on loop: EventLoop? = nil) async throws -> Channel {
        let loop = loop ?? group.next()
        // The promise crosses into the channel initializer; the handler is made there, on the loop.
        let answerPromise = loop.makePromise(of: ConnectResponseReader.Answer.self)
        let tls = self.tls
        guard tls != nil || !server.useTLS else { throw ConnectClientError.unreachable("\(server): https needs a TLS setup") }
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(timeout)
                .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls { try tls(channel) }
                        try channel.pipeline.syncOperations.addHandler(ConnectResponseReader(answer: answerPromise))
                    }
                }
                .connect(host: server.host, port: server.port).get()
        } catch {
            answerPromise.fail(error)
            throw ConnectClientError.unreachable("cannot connect to \(server): \(error)")
        }
        let target = "\(executor):\(port)"
        let request = "CONNECT \(target) HTTP/1.1\r\nHost: \(target)\r\nProxy-Authorization: Bearer \(token)\r\nUser-Agent: ah\r\n\r\n"
        channel.writeAndFlush(channel.allocator.buffer(string: request), promise: nil)
        let timeout = self.timeout
        let timer = loop.scheduleTask(in: timeout) {
            answerPromise.fail(ConnectClientError.unreachable("no answer from \(self.server) within \(timeout)"))
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        let answer: ConnectResponseReader.Answer
        do {
            answer = try await answerPromise.futureResult.get()
        } catch let error as ConnectClientError {
            channel.close(promise: nil)
            throw error
        } catch {
            channel.close(promise: nil)
            throw ConnectClientError.unreachable("\(server): \(error)")
        }
        guard answer.status == 200 else {
            let problem = try? JSONDecoder().decode(Problem.self, from: Data(answer.body))
            throw ConnectClientError.refused(status: answer.status, detail: problem?.detail ?? answer.reason)
        }
        return channel
    }
}

public enum ConnectClientError: Error, CustomStringConvertible, Equatable {
    case unreachable(String)
    case malformedResponse(String)
    case refused(status: Int, detail: String)

    public var description: String {
        switch self {
        case .unreachable(let s): return s
        case .malformedResponse(let s): return "malformed answer from the access point: \(s)"
        case .refused(let status, let detail): return "\(status): \(detail)"
        }
    }
}
