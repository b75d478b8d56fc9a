import Foundation

/// Size limits on values that reach the identity tables. Names, keys and details partly come
/// from remote peers (a refused executor's name, its error text), so every stored string is
/// bounded; the checks live here so both backends can share them.
enum Limits {
    static let tokenIDLength = 1...64
    static let hashLength = 1...64
    static let usesRange = 1...1_000_000
    static let serialLength = 1...128
    static let detailCharacters = 1024
    static let maxHistoryRows = 10_000

    static func tokenID(_ id: String) throws {
        let allowed = id.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || byte == 0x2d || byte == 0x5f
        }
        guard tokenIDLength.contains(id.utf8.count), allowed else {
            throw IdentityStoreError.invalidArgument("token id must be 1-64 characters of A-Z, a-z, 0-9, '-', '_'")
        }
    }

    static func hash(_ bytes: [UInt8], _ what: String) throws {
        guard hashLength.contains(bytes.count) else {
            throw IdentityStoreError.invalidArgument("\(what) must be 1-64 bytes, got \(bytes.count)")
        }
    }

    static func executorName(_ name: String) throws {
        guard !name.isEmpty, name.utf8.count <= 255, SPIFFEIDSegment.isValid(name) else {
            throw IdentityStoreError.invalidArgument("executor name \(truncated(name, 80)) is not a valid SPIFFE path segment")
        }
    }

    static func serial(_ serial: String) throws {
        guard serialLength.contains(serial.utf8.count) else {
            throw IdentityStoreError.invalidArgument("certificate serial must be 1-128 characters")
        }
    }

    /// Keeps details bounded without refusing the event being recorded.
    static func truncated(_ text: String, _ limit: Int = detailCharacters) -> String {
        text.count > limit ? String(text.prefix(limit)) + "…" : text
    }
}
