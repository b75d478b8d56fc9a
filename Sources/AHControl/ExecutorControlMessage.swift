/// What an executor sends on its control stream, decoded in one pass over the JSON: the
/// header and then the message's own fields from the same parsed document. Decoding the
/// header and the body separately parsed every heartbeat twice, and at 2,000 executors the
/// access point spent a fifth of its idle CPU in JSONDecoder.
public enum ExecutorControlMessage: Decodable, Sendable {
    case hello(Hello)
    /// The executor's facts again, later on the same stream (its sshd came up or was re-keyed):
    /// the fields of `hello` under type `facts`. Access points that do not know it ignore it.
    case facts(Hello)
    case heartbeat(Heartbeat)
    case goodbye(Goodbye)
    case pong(Pong)
    /// Another protocol version, or a type this access point does not know; only the header
    /// is decoded (the receiver decides: refuse the version, ignore the type).
    case other(MessageHeader)

    public init(from decoder: Decoder) throws {
        let header = try MessageHeader(from: decoder)
        guard header.version == ControlProtocol.version else {
            self = .other(header)
            return
        }
        switch header.type {
        case "hello": self = .hello(try Hello(from: decoder))
        case Hello.factsType: self = .facts(try Hello(from: decoder))
        case "heartbeat": self = .heartbeat(try Heartbeat(from: decoder))
        case "goodbye": self = .goodbye(try Goodbye(from: decoder))
        case "pong": self = .pong(try Pong(from: decoder))
        default: self = .other(header)
        }
    }

    public var header: MessageHeader {
        switch self {
        case .hello(let m), .facts(let m): return MessageHeader(version: m.version, type: m.type)
        case .heartbeat(let m): return MessageHeader(version: m.version, type: m.type)
        case .goodbye(let m): return MessageHeader(version: m.version, type: m.type)
        case .pong(let m): return MessageHeader(version: m.version, type: m.type)
        case .other(let header): return header
        }
    }
}
