import Foundation

/// Tag maps (`k=v` labels on tokens and executors) stored as a JSON object.
///
/// Keys are sorted so that equal maps are equal strings (stable diffs, dumps and tests).
/// The size is capped: tags come from operators and executors, and nothing an executor sends
/// should be able to grow a row without bound.
enum TagsJSON {
    static let maxEncodedBytes = 16 * 1024

    static func encode(_ tags: [String: String]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(tags)
        guard data.count <= maxEncodedBytes else {
            throw IdentityStoreError.invalidArgument("tags are \(data.count) bytes as JSON; the limit is \(maxEncodedBytes)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func decode(_ json: String, column: String) throws -> [String: String] {
        do {
            return try JSONDecoder().decode([String: String].self, from: Data(json.utf8))
        } catch {
            throw IdentityStoreError.corruptRow("\(column) is not a JSON object of strings: \(json.prefix(200))")
        }
    }
}
