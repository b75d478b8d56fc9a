import Foundation

/// One JSON style for every API body: sorted keys (stable output for diffs and tests) and
/// unescaped slashes (SPIFFE IDs stay readable).
public enum APIJSON {
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }
}
