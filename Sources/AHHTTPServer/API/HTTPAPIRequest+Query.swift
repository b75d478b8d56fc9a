import Foundation

extension HTTPAPIRequest {
    /// The query string's parameters in order (`?a=1&b=x%20y` → `[("a", "1"), ("b", "x y")]`),
    /// percent-decoded, `+` read as a space. A parameter without `=` has an empty value; one
    /// that does not decode is kept as sent. (The request head is bounded by the decoder, so
    /// this is too.)
    public var queryItems: [(name: String, value: String)] {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return [] }
        return parts[1].split(separator: "&").map { pair in
            let halves = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                let spaced = text.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            return (decode(halves[0]), halves.count == 2 ? decode(halves[1]) : "")
        }
    }

    /// The last value of query parameter `name`, or nil when absent.
    public func query(_ name: String) -> String? {
        queryItems.last { $0.name == name }?.value
    }
}
