import AHTunnel
import Foundation
import NIOCore

/// Reads the proxy's answer to our CONNECT: the status line and headers (bounded), and for a
/// refusal its body (bounded, for the Problem+JSON detail). On 200 it gives way to a
/// `TunnelPrelude` holding whatever followed the head (the sshd's banner may come at once).
final class ConnectResponseReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    struct Answer: Sendable {
        var status: Int
        var reason: String
        var headers: [(String, String)]
        var body: [UInt8]
    }

    static let maxHeadBytes = 16 * 1024
    static let maxBodyBytes = 64 * 1024

    let answer: EventLoopPromise<Answer>
    private var buffer = ByteBuffer()
    private var head: Answer?
    private var bodyLength: Int?

    init(answer: EventLoopPromise<Answer>) {
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        do { try progress(context: context) } catch {
            answer.fail(error)
            context.close(promise: nil)
        }
    }

    private func progress(context: ChannelHandlerContext) throws {
        if head == nil {
            let view = buffer.readableBytesView
            guard let end = view.firstRange(of: [13, 10, 13, 10]) else {
                if buffer.readableBytes > Self.maxHeadBytes { throw ConnectClientError.malformedResponse("response head over \(Self.maxHeadBytes) bytes") }
                return
            }
            let headLength = end.upperBound - view.startIndex
            let text = String(decoding: buffer.readBytes(length: headLength)!, as: UTF8.self)
            var lines = text.components(separatedBy: "\r\n").filter { !$0.isEmpty }
            guard !lines.isEmpty else { throw ConnectClientError.malformedResponse("empty response") }
            let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2).map(String.init)
            guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
                throw ConnectClientError.malformedResponse("bad status line")
            }
            let headers = lines.compactMap { line -> (String, String)? in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
            head = Answer(status: status, reason: statusLine.count > 2 ? statusLine[2] : "", headers: headers, body: [])
            if (200..<300).contains(status) {
                let rest = buffer.readableBytes > 0 ? [buffer] : []
                buffer = ByteBuffer()
                let sync = context.pipeline.syncOperations
                try sync.addHandler(TunnelPrelude(initial: rest), position: .after(self))
                sync.removeHandler(context: context, promise: nil)
                answer.succeed(head!)
                return
            }
            bodyLength = headers.first { $0.0 == "content-length" }.flatMap { Int($0.1) }
        }
        if let length = bodyLength, buffer.readableBytes >= min(length, Self.maxBodyBytes) {
            finishRefusal(context: context)
        } else if buffer.readableBytes > Self.maxBodyBytes {
            finishRefusal(context: context)
        }
    }

    private func finishRefusal(context: ChannelHandlerContext) {
        guard var answer = head else { return }
        answer.body = buffer.readBytes(length: min(buffer.readableBytes, Self.maxBodyBytes)) ?? []
        self.answer.succeed(answer)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if head != nil {
            finishRefusal(context: context)
        } else {
            answer.fail(ConnectClientError.malformedResponse("connection closed before the proxy answered"))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        answer.fail(error)
        context.close(promise: nil)
    }
}
