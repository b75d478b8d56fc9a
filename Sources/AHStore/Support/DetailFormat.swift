import Foundation

/// Formatting of the facts that go into history details, so every row reads the same way.
enum DetailFormat {
    static func time(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    static func tags(_ tags: [String: String]) -> String {
        tags.isEmpty ? "none" : tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }
}
