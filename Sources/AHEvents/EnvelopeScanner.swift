import Foundation

/// A strict one-pass JSON check of an event body that also picks out its four envelope
/// fields. The access point stored every event after decoding its envelope with
/// `JSONDecoder`, which was about 28 % of its CPU at 20,000 events/s (bench/events):
/// Codable's keyed containers index every key of every event. This walks the text once,
/// the grammar of RFC 8259 (nesting bounded), and reads only the top-level `type`, `seq`,
/// `ts` and `session`.
///
/// Stricter than `JSONDecoder` where that is harmless: `seq` must be written as an integer
/// (the leader writes it so) and an envelope key may appear only once.
struct EnvelopeScanner {
    struct Envelope: Equatable {
        var type: String
        var seq: Int64
        var ts: String
        var session: String
    }

    enum Failure: Error, Equatable {
        case syntax(offset: Int)
        case tooDeep
        case invalidUTF8
        /// An envelope key missing, repeated, or of the wrong kind.
        case envelope(String)
    }

    static let maxDepth = 64

    private let bytes: [UInt8]
    private var at = 0

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    static func scan(_ bytes: [UInt8]) throws(Failure) -> Envelope {
        guard String(validating: bytes, as: UTF8.self) != nil else { throw .invalidUTF8 }
        var scanner = EnvelopeScanner(bytes)
        return try scanner.document()
    }

    private mutating func document() throws(Failure) -> Envelope {
        skipSpace()
        guard peek == UInt8(ascii: "{") else { throw .syntax(offset: at) }
        at += 1
        var type: String?, seq: Int64?, ts: String?, session: String?
        skipSpace()
        if peek == UInt8(ascii: "}") {
            at += 1
        } else {
            while true {
                skipSpace()
                let key = try string()
                skipSpace()
                try expect(":")
                skipSpace()
                switch key.text {
                case "type", "ts", "session":
                    guard peek == UInt8(ascii: "\"") else { throw .envelope("\(key.text) must be a string") }
                    let value = try decoded(string())
                    switch key.text {
                    case "type":
                        guard type == nil else { throw .envelope("type appears twice") }
                        type = value
                    case "ts":
                        guard ts == nil else { throw .envelope("ts appears twice") }
                        ts = value
                    default:
                        guard session == nil else { throw .envelope("session appears twice") }
                        session = value
                    }
                case "seq":
                    guard seq == nil else { throw .envelope("seq appears twice") }
                    let start = at
                    let integral = try number()
                    guard integral, let value = Int64(String(decoding: bytes[start..<at], as: UTF8.self)) else {
                        throw .envelope("seq must be an integer")
                    }
                    seq = value
                default:
                    try value(depth: 1)
                }
                skipSpace()
                if peek == UInt8(ascii: ",") { at += 1; continue }
                try expect("}")
                break
            }
        }
        skipSpace()
        guard at == bytes.count else { throw .syntax(offset: at) }
        guard let type, let seq, let ts, let session else { throw .envelope("type, seq, ts and session are required") }
        return Envelope(type: type, seq: seq, ts: ts, session: session)
    }

    private var peek: UInt8? { at < bytes.count ? bytes[at] : nil }

    private mutating func skipSpace() {
        while let byte = peek, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { at += 1 }
    }

    private mutating func expect(_ character: Unicode.Scalar) throws(Failure) {
        guard peek == UInt8(ascii: character) else { throw .syntax(offset: at) }
        at += 1
    }

    private mutating func value(depth: Int) throws(Failure) {
        guard let byte = peek else { throw .syntax(offset: at) }
        switch byte {
        case UInt8(ascii: "{"):
            guard depth < Self.maxDepth else { throw .tooDeep }
            at += 1
            skipSpace()
            if peek == UInt8(ascii: "}") { at += 1; return }
            while true {
                skipSpace()
                _ = try string()
                skipSpace()
                try expect(":")
                skipSpace()
                try value(depth: depth + 1)
                skipSpace()
                if peek == UInt8(ascii: ",") { at += 1; continue }
                try expect("}")
                return
            }
        case UInt8(ascii: "["):
            guard depth < Self.maxDepth else { throw .tooDeep }
            at += 1
            skipSpace()
            if peek == UInt8(ascii: "]") { at += 1; return }
            while true {
                skipSpace()
                try value(depth: depth + 1)
                skipSpace()
                if peek == UInt8(ascii: ",") { at += 1; continue }
                try expect("]")
                return
            }
        case UInt8(ascii: "\""): _ = try string()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: _ = try number()
        }
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
        let count = word.utf8CodeUnitCount
        guard at + count <= bytes.count else { throw .syntax(offset: at) }
        for index in 0..<count where bytes[at + index] != word.utf8Start[index] { throw .syntax(offset: at + index) }
        at += count
    }

    /// A number per RFC 8259; true when it has neither fraction nor exponent.
    private mutating func number() throws(Failure) -> Bool {
        if peek == UInt8(ascii: "-") { at += 1 }
        guard let first = peek, isDigit(first) else { throw .syntax(offset: at) }
        at += 1
        if first != UInt8(ascii: "0") { while let byte = peek, isDigit(byte) { at += 1 } }
        var integral = true
        if peek == UInt8(ascii: ".") {
            integral = false
            at += 1
            guard let byte = peek, isDigit(byte) else { throw .syntax(offset: at) }
            while let byte = peek, isDigit(byte) { at += 1 }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            integral = false
            at += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { at += 1 }
            guard let byte = peek, isDigit(byte) else { throw .syntax(offset: at) }
            while let byte = peek, isDigit(byte) { at += 1 }
        }
        return integral
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    /// A string's raw text between its quotes and whether it holds an escape.
    private struct RawString {
        var text: String
        var escaped: Bool
    }

    private mutating func string() throws(Failure) -> RawString {
        try expect("\"")
        let start = at
        var escaped = false
        while true {
            guard let byte = peek else { throw .syntax(offset: at) }
            switch byte {
            case UInt8(ascii: "\""):
                let text = String(decoding: bytes[start..<at], as: UTF8.self)
                at += 1
                return RawString(text: text, escaped: escaped)
            case UInt8(ascii: "\\"):
                escaped = true
                at += 1
                guard let next = peek else { throw .syntax(offset: at) }
                switch next {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    at += 1
                case UInt8(ascii: "u"):
                    at += 1
                    let unit = try hex4()
                    // UTF-16 escapes must pair up: a high surrogate, then `\u` and a low one.
                    if (0xD800...0xDBFF).contains(unit) {
                        guard peek == UInt8(ascii: "\\"), at + 1 < bytes.count, bytes[at + 1] == UInt8(ascii: "u") else {
                            throw .syntax(offset: at)
                        }
                        at += 2
                        guard (0xDC00...0xDFFF).contains(try hex4()) else { throw .syntax(offset: at) }
                    } else if (0xDC00...0xDFFF).contains(unit) {
                        throw .syntax(offset: at)
                    }
                default: throw .syntax(offset: at)
                }
            case ..<0x20: throw .syntax(offset: at)
            default: at += 1
            }
        }
    }

    private mutating func hex4() throws(Failure) -> UInt16 {
        var value: UInt16 = 0
        for _ in 0..<4 {
            guard let byte = peek else { throw .syntax(offset: at) }
            let digit: UInt8
            switch byte {
            case 0x30...0x39: digit = byte - 0x30
            case 0x41...0x46: digit = byte - 0x41 + 10
            case 0x61...0x66: digit = byte - 0x61 + 10
            default: throw .syntax(offset: at)
            }
            value = value << 4 | UInt16(digit)
            at += 1
        }
        return value
    }

    /// The value of a string (escapes resolved; rare in envelope fields, so done by Foundation).
    private func decoded(_ raw: RawString) throws(Failure) -> String {
        guard raw.escaped else { return raw.text }
        guard let value = (try? JSONSerialization.jsonObject(with: Data(("[\"" + raw.text + "\"]").utf8))) as? [String],
              let first = value.first else { throw .envelope("a string with an invalid escape") }
        return first
    }
}
