@testable import AHEvents
import Foundation
import XCTest

/// The access point's JSON check of event bodies (`EnvelopeScanner`) against Foundation's
/// own parser: every body one accepts the other accepts, and the envelope read is the one
/// Foundation reads.
final class EnvelopeScannerTests: XCTestCase {
    static let valid = [
        #"{"type":"hostLog","seq":1,"ts":"2026-12-03T14:26:57.123Z","session":"s-1","text":"hi\n","n":-1.5e3}"#,
        #"{ "session" : "s" , "seq" : 42 , "ts" : "t" , "type" : "a.b-c_d" }"#,
        #"{"type":"x","seq":9007199254740993,"ts":"t","session":"s","deep":[[[{"a":[true,false,null,0,-0,0.5,1E+2,2e-3]}]]],"e":{},"f":[]}"#,
        #"{"type":"x","seq":3,"ts":"t","session":"s","u":"\u00e9\ud83d\ude00 \/ \b\f\r\t\"\\","raw":"é😀"}"#,
        #"{"type":"x","seq":4,"ts":"t","session":"s\u002d2"}"#,
    ]

    /// Trailing commas: Foundation's parser lets them through; RFC 8259 does not, nor do we.
    static let trailingCommas = [
        #"{"type":"x","seq":1,"ts":"t","session":"s",}"#,
        #"{"type":"x","seq":1,"ts":"t","session":"s","a":[1,]}"#,
    ]

    static let invalid = [
        #"{"type":"x","seq":1,"ts":"t","session":"s","u":"\ud83d"}"#,       // a lone high surrogate
        #"{"type":"x","seq":1,"ts":"t","session":"s","u":"\ude00x"}"#,      // a lone low surrogate
        #"{"type":"x","seq":1,"ts":"t","session":"s","u":"\ud83d\u0041"}"#, // high, then not low
        #"{"type":"x","seq":1,"ts":"t","session":"s"} x"#,         // trailing text
        #"{"type":"x","seq":01,"ts":"t","session":"s"}"#,          // leading zero
        #"{"type":"x","seq":1,"ts":"t","session":"s","a":.5}"#,    // no integer part
        #"{"type":"x","seq":1,"ts":"t","session":"s","a":1.}"#,    // no fraction digits
        #"{"type":"x","seq":1,"ts":"t","session":"s","a":"\x"}"#,  // bad escape
        #"{"type":"x","seq":1,"ts":"t","session":"s","a":"\u12"}"#,
        #"{"type":"x","seq":1,"ts":"t","session":"s","a":tru}"#,
        #"{"type":"x","seq":1,"ts":"t","session":"s","a" 1}"#,
        #"{"type":"x","seq":1,"ts":"t","session":"s""#,
        "{\"type\":\"x\",\"seq\":1,\"ts\":\"t\",\"session\":\"s\",\"a\":\"tab\there\"}",  // raw control character
    ]

    func testValidBodiesGiveFoundationsEnvelope() throws {
        for text in Self.valid {
            let bytes = Array(text.utf8)
            let scanned = try EnvelopeScanner.scan(bytes)
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any], text)
            XCTAssertEqual(scanned.type, object["type"] as? String, text)
            XCTAssertEqual(scanned.ts, object["ts"] as? String, text)
            XCTAssertEqual(scanned.session, object["session"] as? String, text)
            XCTAssertEqual(scanned.seq, try JSONDecoder().decode(Seq.self, from: Data(bytes)).seq, text)
        }
    }

    func testInvalidJSONIsRefusedAsFoundationRefusesIt() {
        for text in Self.invalid {
            XCTAssertThrowsError(try EnvelopeScanner.scan(Array(text.utf8)), text)
            XCTAssertNil(try? JSONSerialization.jsonObject(with: Data(text.utf8)), "Foundation accepts \(text)")
        }
        for text in Self.trailingCommas { XCTAssertThrowsError(try EnvelopeScanner.scan(Array(text.utf8)), text) }
    }

    func testEnvelopeProblemsAreNamed() {
        let cases: [(String, EnvelopeScanner.Failure)] = [
            (#"{"type":"x","seq":1,"ts":"t"}"#, .envelope("type, seq, ts and session are required")),
            (#"{"type":"x","seq":1.5,"ts":"t","session":"s"}"#, .envelope("seq must be an integer")),
            (#"{"type":"x","seq":"1","ts":"t","session":"s"}"#, .syntax(offset: 18)),
            (#"{"type":1,"seq":1,"ts":"t","session":"s"}"#, .envelope("type must be a string")),
            (#"{"type":"x","type":"y","seq":1,"ts":"t","session":"s"}"#, .envelope("type appears twice")),
            (#"{"type":"x","seq":99999999999999999999,"ts":"t","session":"s"}"#, .envelope("seq must be an integer")),
        ]
        for (text, failure) in cases {
            XCTAssertThrowsError(try EnvelopeScanner.scan(Array(text.utf8)), text) { XCTAssertEqual($0 as? EnvelopeScanner.Failure, failure, text) }
        }
        XCTAssertThrowsError(try EnvelopeScanner.scan([0x7B, 0xFF, 0x7D])) { XCTAssertEqual($0 as? EnvelopeScanner.Failure, .invalidUTF8) }
        let deep = #"{"type":"x","seq":1,"ts":"t","session":"s","a":"# + String(repeating: "[", count: 70) + String(repeating: "]", count: 70) + "}"
        XCTAssertThrowsError(try EnvelopeScanner.scan(Array(deep.utf8))) { XCTAssertEqual($0 as? EnvelopeScanner.Failure, .tooDeep) }
    }

    /// Every prefix and every one-byte change of the valid bodies: the scanner accepts exactly
    /// what Foundation accepts as a JSON object carrying the four fields.
    func testMutationsAgreeWithFoundation() {
        let replacements: [UInt8] = Array("{}[]\",:\\0-1eE.tfn ".utf8) + [0x00, 0x1F, 0x7F]
        var checked = 0
        for text in Self.valid {
            let bytes = Array(text.utf8)
            var variants: [[UInt8]] = (0..<bytes.count).map { Array(bytes[..<$0]) }
            for index in bytes.indices {
                for replacement in replacements where replacement != bytes[index] {
                    var changed = bytes
                    changed[index] = replacement
                    variants.append(changed)
                }
            }
            for variant in variants {
                let ours = (try? EnvelopeScanner.scan(variant)) != nil
                let theirs = Self.foundationAccepts(variant)
                // Where we are stricter by design (a non-integer seq, a repeated key), Foundation may accept.
                if ours { XCTAssertTrue(theirs, "we accept what Foundation refuses: \(String(decoding: variant, as: UTF8.self))") }
                if theirs && !ours && !Self.hasTrailingComma(variant) {
                    let failure = (try? { () throws -> EnvelopeScanner.Failure? in
                        do { _ = try EnvelopeScanner.scan(variant); return nil } catch let error as EnvelopeScanner.Failure { return error }
                    }()) ?? nil
                    if case .envelope = failure {} else {
                        XCTFail("we refuse (\(String(describing: failure))) what Foundation accepts: \(String(decoding: variant, as: UTF8.self))")
                    }
                }
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 5_000)
    }

    /// A comma, then only blanks, then a closing bracket or brace.
    private static func hasTrailingComma(_ bytes: [UInt8]) -> Bool {
        var afterComma = false
        for byte in bytes {
            if byte == UInt8(ascii: ",") { afterComma = true } else if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
                if afterComma { return true }
            } else if byte != UInt8(ascii: " ") { afterComma = false }
        }
        return false
    }

    private struct Seq: Decodable { var seq: Int64 }
    private struct Envelope: Decodable {
        var type: String
        var seq: Int64
        var ts: String
        var session: String
    }

    private static func foundationAccepts(_ bytes: [UInt8]) -> Bool {
        guard (try? JSONSerialization.jsonObject(with: Data(bytes))) is [String: Any] else { return false }
        return (try? JSONDecoder().decode(Envelope.self, from: Data(bytes))) != nil
    }
}
