#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `[fleet.sync] ignores` in gitignore syntax: `#` comments, `!` re-includes, a trailing
/// `/` matches directories only, a pattern with a `/` elsewhere is anchored at the root
/// (a leading `/` just anchors), otherwise it matches a name at any depth; `*`, `?` and
/// `[...]` within a component, `**` across components (`**/x`, `x/**`, `a/**/b`). The last
/// matching pattern decides. `.git` is always ignored and cannot be re-included. As in git,
/// nothing inside an ignored directory is looked at (a `!` cannot re-include it).
public struct IgnoreMatcher: Sendable, Equatable {
    struct Rule: Sendable, Equatable {
        var negated: Bool
        var directoryOnly: Bool
        var anchored: Bool
        var segments: [String]
    }

    let rules: [Rule]
    public let patterns: [String]

    public init(patterns: [String]) {
        self.patterns = patterns
        rules = patterns.compactMap(Self.parse)
    }

    static func parse(_ line: String) -> Rule? {
        var text = Substring(line)
        // Trailing spaces are dropped unless escaped.
        while text.hasSuffix(" ") && !text.hasSuffix("\\ ") { text = text.dropLast() }
        if text.isEmpty || text.hasPrefix("#") { return nil }
        var negated = false
        if text.hasPrefix("!") {
            negated = true
            text = text.dropFirst()
        } else if text.hasPrefix("\\!") || text.hasPrefix("\\#") {
            text = text.dropFirst()
        }
        var directoryOnly = false
        while text.hasSuffix("/") {
            directoryOnly = true
            text = text.dropLast()
        }
        if text.isEmpty { return nil }
        var anchored = text.contains("/")
        if text.hasPrefix("/") {
            anchored = true
            text = text.drop { $0 == "/" }
        }
        let segments = text.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if segments.isEmpty { return nil }
        // `**/x` is the same as unanchored `x` when x is one component.
        if anchored, segments.count == 2, segments[0] == "**", segments[1] != "**" {
            return Rule(negated: negated, directoryOnly: directoryOnly, anchored: false, segments: [segments[1]])
        }
        return Rule(negated: negated, directoryOnly: directoryOnly, anchored: anchored, segments: segments)
    }

    /// Whether `path` (a manifest path) is left out of the sync.
    public func isIgnored(_ path: String, isDirectory: Bool) -> Bool {
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        if components.contains(".git") { return true }
        var ignored = false
        for rule in rules {
            if rule.directoryOnly && !isDirectory { continue }
            if rule.negated == !ignored { continue } // cannot change the outcome
            let matched: Bool
            if rule.anchored {
                matched = Self.match(rule.segments[...], components[...])
            } else {
                matched = components.last.map { Self.matchComponent(rule.segments[0], $0) } ?? false
            }
            if matched { ignored = !rule.negated }
        }
        return ignored
    }

    static func match(_ pattern: ArraySlice<String>, _ path: ArraySlice<Substring>) -> Bool {
        guard let first = pattern.first else { return path.isEmpty }
        if first == "**" {
            let rest = pattern.dropFirst()
            // A trailing `**` matches everything inside, not the directory itself.
            if rest.isEmpty { return !path.isEmpty }
            var tail = path
            while true {
                if match(rest, tail) { return true }
                if tail.isEmpty { return false }
                tail = tail.dropFirst()
            }
        }
        guard let component = path.first else { return false }
        return matchComponent(first, component) && match(pattern.dropFirst(), path.dropFirst())
    }

    /// One component against one glob (fnmatch: `*`, `?`, `[...]`, `\` escapes).
    static func matchComponent(_ pattern: String, _ name: Substring) -> Bool {
        if !pattern.contains(where: { "*?[\\".contains($0) }) { return pattern == name }
        return fnmatch(pattern, String(name), 0) == 0
    }
}
