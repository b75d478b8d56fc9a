import Foundation
import NIOCore

/// A received control message before it is decoded into its type: the header says which
/// type, `decode` gives it. Keeping the raw JSON lets one stream carry several message types.
public struct ControlFrame: Sendable {
    public let header: MessageHeader
    public let body: Data

    public init(body: Data) throws {
        self.header = try Frame.decodeBody(MessageHeader.self, body)
        self.body = body
    }

    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try Frame.decodeBody(type, body)
    }

    /// For streams whose first frame has one fixed meaning (a tunnel's open-tcp and its
    /// result): takes the next frame off `buffer`, checks it is `type` of this protocol
    /// version and decodes it; nil while the frame is incomplete.
    public static func next<T: Decodable>(_ message: T.Type, type: String, from buffer: inout ByteBuffer) throws -> T? {
        guard let body = try Frame.nextBody(from: &buffer) else { return nil }
        let frame = try ControlFrame(body: body)
        guard frame.header.version == ControlProtocol.version, frame.header.type == type else {
            throw FrameError.malformed("expected \(type) version \(ControlProtocol.version), got \(frame.header.type.prefix(32)) version \(frame.header.version)")
        }
        return try frame.decode(message)
    }
}

/// Splits a stream of bytes into frames, refusing any frame over the bound as soon as its
/// length prefix is seen (nothing oversized is ever buffered), and turns each body into
/// `Output`: a `ControlFrame` (`ControlFrameDecoder()`), or a message decoded in one JSON
/// pass (`FrameDecoder(decoding: ExecutorControlMessage.self)` on the access point's control
/// streams). A body that does not convert is an error of the stream.
public struct FrameDecoder<Output>: ByteToMessageDecoder {
    public typealias InboundOut = Output
    private let convert: (Data) throws -> Output

    public init(_ convert: @escaping (Data) throws -> Output) {
        self.convert = convert
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let body = try Frame.nextBody(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(try convert(body)))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 { throw FrameError.truncated }
        return .needMoreData
    }
}

public typealias ControlFrameDecoder = FrameDecoder<ControlFrame>

extension FrameDecoder where Output == ControlFrame {
    public init() { self.init { try ControlFrame(body: $0) } }
}

extension FrameDecoder where Output: Decodable {
    /// One JSONDecoder per stream (a stream lives on one event loop), reused for every frame.
    public init(decoding type: Output.Type) {
        let json = Frame.makeDecoder()
        self.init { try Frame.decodeBody(type, $0, using: json) }
    }
}
