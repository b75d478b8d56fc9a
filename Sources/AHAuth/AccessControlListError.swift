/// Why the ACL in the config file was refused. Names the file and the 1-based rule so the
/// operator can go straight to the bad line; a refused ACL stops `ah serve` rather than
/// running with fewer (or more) grants than written.
public struct AccessControlListError: Error, Equatable, Sendable, CustomStringConvertible {
    public let path: String
    /// 1-based index among the `[[serve.acl]]` entries; nil for file-level problems.
    public let rule: Int?
    public let reason: String

    public init(path: String, rule: Int?, reason: String) {
        self.path = path
        self.rule = rule
        self.reason = reason
    }

    public var description: String {
        if let rule { return "config file '\(path)': [[serve.acl]] rule \(rule): \(reason)" }
        return "config file '\(path)': \(reason)"
    }
}
