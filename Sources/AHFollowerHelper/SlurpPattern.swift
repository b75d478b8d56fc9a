/// One workspace-relative path or glob of a file set, split into `/`-separated segments.
///
/// Per segment: `*` any run of characters, `?` one character, `[abc]`, `[a-z]`, `[!a-z]` (or
/// `[^a-z]`) one character of (not of) the class, `\x` the character x. A whole segment
/// `**` matches zero or more directories. `*` and `?` never match `/`. Empty and `.`
/// segments are dropped (`./dist//x` is `dist/x`).
public struct SlurpPattern: Sendable, Equatable {
    enum Segment: Sendable, Equatable {
        case anyDirectories
        case glob([Unicode.Scalar])
        case literal(String)
    }

    public let text: String
    let segments: [Segment]
    /// True when the pattern has a `/`; an unanchored exclude matches a name at any depth.
    public let anchored: Bool

    /// Refuses what could leave the workspace: absolute paths (`/`, `\`, `C:`), `..` segments.
    public init(_ text: String) throws(SlurpPatternError) {
        if let problem = Self.problem(text) { throw SlurpPatternError(pattern: text, reason: problem) }
        self.text = text
        var trimmed = Substring(text)
        while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        anchored = trimmed.contains("/")
        segments = trimmed.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }.map { part in
            if part == "**" { return .anyDirectories }
            if part.unicodeScalars.contains(where: { $0 == "*" || $0 == "?" || $0 == "[" || $0 == "\\" }) {
                return .glob(Array(part.unicodeScalars))
            }
            return .literal(String(part))
        }
    }

    /// nil when `text` stays inside the workspace whatever it matches, else why not.
    public static func problem(_ text: String) -> String? {
        if text.isEmpty { return "an empty pattern names nothing" }
        if text.utf8.contains(0) { return "a pattern cannot contain a NUL byte" }
        if text.hasPrefix("/") || text.hasPrefix("\\") { return "an absolute path leaves the workspace (paths are relative to it)" }
        let scalars = Array(text.unicodeScalars)
        if scalars.count >= 2, scalars[1] == ":", (scalars[0] >= "a" && scalars[0] <= "z") || (scalars[0] >= "A" && scalars[0] <= "Z") {
            return "a drive path leaves the workspace (paths are relative to it)"
        }
        if text.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == ".." || $0.split(separator: "\\").contains("..") }) {
            return "a '..' segment leaves the workspace"
        }
        if text.split(separator: "/").filter({ $0 != "." }).isEmpty { return "the pattern names the workspace itself; name what is in it" }
        return nil
    }

    /// The leading segments without wildcards: where a walk for this pattern starts.
    var literalPrefix: [String] {
        var prefix: [String] = []
        for segment in segments {
            guard case .literal(let name) = segment else { break }
            prefix.append(name)
        }
        return prefix
    }

    /// True when the whole pattern is a plain path.
    var isLiteral: Bool { literalPrefix.count == segments.count }

    /// Whether `path` (segments) matches the whole pattern.
    public func matches(_ path: [String]) -> Bool {
        Self.match(segments[...], path[...])
    }

    /// Whether some path below the directory `path` could match (worth descending into).
    func mayMatchBelow(_ path: [String]) -> Bool {
        Self.prefix(segments[...], path[...])
    }

    /// For excludes: anchored patterns match the path or one of its ancestors (a directory
    /// excludes its tree); a pattern without `/` matches any one segment.
    public func excludes(_ path: [String]) -> Bool {
        if !anchored, segments.count == 1 {
            return path.contains { Self.segmentMatches(segments[0], $0) }
        }
        for length in stride(from: path.count, through: 1, by: -1) where Self.match(segments[...], path[0..<length]) {
            return true
        }
        return false
    }

    private static func match(_ pattern: ArraySlice<Segment>, _ path: ArraySlice<String>) -> Bool {
        guard let first = pattern.first else { return path.isEmpty }
        if first == .anyDirectories {
            let rest = pattern.dropFirst()
            var tail = path
            while true {
                if match(rest, tail) { return true }
                if tail.isEmpty { return false }
                tail = tail.dropFirst()
            }
        }
        guard let name = path.first, segmentMatches(first, name) else { return false }
        return match(pattern.dropFirst(), path.dropFirst())
    }

    /// Whether `path` can be extended (by one or more segments) to a match.
    private static func prefix(_ pattern: ArraySlice<Segment>, _ path: ArraySlice<String>) -> Bool {
        guard let first = pattern.first else { return false }
        guard let name = path.first else { return true }
        if first == .anyDirectories { return prefix(pattern.dropFirst(), path) || prefix(pattern, path.dropFirst()) }
        return segmentMatches(first, name) && prefix(pattern.dropFirst(), path.dropFirst())
    }

    static func segmentMatches(_ segment: Segment, _ name: String) -> Bool {
        switch segment {
        case .anyDirectories: return true
        case .literal(let literal): return literal == name
        case .glob(let glob): return wildcard(glob[...], Array(name.unicodeScalars)[...])
        }
    }

    /// fnmatch(3) on one segment, iterative with one backtrack point per `*`.
    static func wildcard(_ pattern: ArraySlice<Unicode.Scalar>, _ name: ArraySlice<Unicode.Scalar>) -> Bool {
        var p = pattern.startIndex
        var n = name.startIndex
        var star: (p: Int, n: Int)?
        while n < name.endIndex {
            if p < pattern.endIndex {
                switch pattern[p] {
                case "*":
                    star = (p, n)
                    p += 1
                    continue
                case "?":
                    p += 1
                    n += 1
                    continue
                case "[":
                    if let (matched, next) = matchClass(pattern, from: p, name[n]) {
                        if matched {
                            p = next
                            n += 1
                            continue
                        }
                    } else if name[n] == "[" {
                        // An unclosed `[` is a literal.
                        p += 1
                        n += 1
                        continue
                    }
                case "\\" where p + 1 < pattern.endIndex:
                    if pattern[p + 1] == name[n] {
                        p += 2
                        n += 1
                        continue
                    }
                default:
                    if pattern[p] == name[n] {
                        p += 1
                        n += 1
                        continue
                    }
                }
            }
            guard let last = star else { return false }
            star = (last.p, last.n + 1)
            p = last.p + 1
            n = last.n + 1
        }
        while p < pattern.endIndex, pattern[p] == "*" { p += 1 }
        return p == pattern.endIndex
    }

    /// `[...]` at `start`: whether `character` is in it and the index after `]`; nil when
    /// the class is not closed.
    private static func matchClass(_ pattern: ArraySlice<Unicode.Scalar>, from start: Int,
                                   _ character: Unicode.Scalar) -> (Bool, Int)? {
        var index = start + 1
        var negated = false
        if index < pattern.endIndex, pattern[index] == "!" || pattern[index] == "^" {
            negated = true
            index += 1
        }
        var matched = false
        var first = true
        while index < pattern.endIndex {
            let current = pattern[index]
            if current == "]" && !first { return (matched != negated, index + 1) }
            first = false
            var low = current
            if current == "\\", index + 1 < pattern.endIndex {
                index += 1
                low = pattern[index]
            }
            if index + 2 < pattern.endIndex, pattern[index + 1] == "-", pattern[index + 2] != "]" {
                let high = pattern[index + 2]
                if low.value <= character.value && character.value <= high.value { matched = true }
                index += 3
            } else {
                if low == character { matched = true }
                index += 1
            }
        }
        return nil
    }
}

/// A pattern the sender refuses, whatever the leader asked.
public struct SlurpPatternError: Error, Sendable, Equatable, CustomStringConvertible {
    public let pattern: String
    public let reason: String

    public var description: String { "the pattern '\(pattern.prefix(256))' is refused: \(reason)" }
}
