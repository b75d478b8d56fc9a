import AHSPIFFE

/// Which executors an ACL rule covers: one by name, all of them, or those carrying a tag.
/// Tags let a rule follow a fleet (`tag:env=staging`) without listing every executor.
public enum ExecutorSelector: Sendable, Hashable, CustomStringConvertible {
    /// `*`
    case any
    /// An executor name, matched exactly.
    case name(String)
    /// `tag:KEY=VALUE`: executors whose tag KEY equals VALUE exactly.
    case tag(key: String, value: String)

    /// Executor names are SPIFFE path segments; the ACL also caps them at a DNS label's length.
    public static let maxNameLength = 63
    public static let maxTagPartBytes = 256

    /// Parses `*`, `NAME` or `tag:KEY=VALUE`; the error says what is wrong, without the value.
    public init(parsing text: String) throws(ExecutorSelectorError) {
        if text == "*" {
            self = .any
        } else if text.hasPrefix("tag:") {
            let body = text.dropFirst(4)
            guard let equals = body.firstIndex(of: "=") else { throw .tagWithoutValue }
            let key = String(body[..<equals])
            let value = String(body[body.index(after: equals)...])
            guard !key.isEmpty else { throw .emptyTagKey }
            guard key.utf8.count <= Self.maxTagPartBytes, value.utf8.count <= Self.maxTagPartBytes else { throw .tagTooLong }
            guard !(key + value).unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw .controlCharacters
            }
            self = .tag(key: key, value: value)
        } else {
            guard !text.isEmpty, text.utf8.count <= Self.maxNameLength, SPIFFEID.isValidPathSegment(text) else {
                throw .invalidName
            }
            self = .name(text)
        }
    }

    public func matches(executor: String, tags: [String: String]) -> Bool {
        switch self {
        case .any: return true
        case .name(let name): return name == executor
        case .tag(let key, let value): return tags[key] == value
        }
    }

    /// The config spelling: `*`, `NAME`, `tag:KEY=VALUE`.
    public var description: String {
        switch self {
        case .any: return "*"
        case .name(let name): return name
        case .tag(let key, let value): return "tag:\(key)=\(value)"
        }
    }
}

/// Why a selector string is not one.
public enum ExecutorSelectorError: Error, Equatable, Sendable, CustomStringConvertible {
    case tagWithoutValue
    case emptyTagKey
    case tagTooLong
    case controlCharacters
    case invalidName

    public var description: String {
        switch self {
        case .tagWithoutValue: return "tag selector must be tag:KEY=VALUE"
        case .emptyTagKey: return "tag selector has an empty key"
        case .tagTooLong: return "tag selector key and value must each be at most \(ExecutorSelector.maxTagPartBytes) bytes"
        case .controlCharacters: return "tag selector contains control characters"
        case .invalidName:
            return "not an executor name (letters, digits, '-', '_', '.'; at most \(ExecutorSelector.maxNameLength) "
                + "characters), '*' or tag:KEY=VALUE"
        }
    }
}
