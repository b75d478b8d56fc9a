/// One `[filesets.NAME]` table: files to fetch from followers with `slurp --fileset NAME`.
public struct Fileset: Sendable, Hashable {
    /// 1-63 of letters, digits, `-`, `_`.
    public var name: String
    /// Paths and globs relative to the follower's workspace (at least one).
    public var include: [String]
    /// Paths and globs removed from what `include` matched (default none).
    public var exclude: [String]
    /// A missing required fileset fails the slurp (default false).
    public var required: Bool
    /// Where the files go on the leader (`~` expanded); nil = the `--dest` of the command.
    public var dest: String?

    public init(name: String, include: [String], exclude: [String] = [], required: Bool = false, dest: String? = nil) {
        self.name = name
        self.include = include
        self.exclude = exclude
        self.required = required
        self.dest = dest
    }

    /// nil when `name` is a valid fileset name, else why not.
    public static func nameProblem(_ name: String) -> String? {
        guard !name.isEmpty, name.utf8.count <= 63 else { return "a fileset name has 1 to 63 characters" }
        let ok = name.unicodeScalars.allSatisfy { ASCII.isLetter($0) || ASCII.isDigit($0) || $0 == "-" || $0 == "_" }
        return ok ? nil : "a fileset name has only letters, digits, '-' and '_'"
    }

    /// nil when `pattern` is a usable workspace-relative path or glob, else why not: absolute
    /// paths (POSIX, `\`, or a Windows drive) and `..` segments would reach outside the workspace.
    public static func patternProblem(_ pattern: String) -> String? {
        if pattern.hasPrefix("/") || pattern.hasPrefix("\\") { return "must be relative to the workspace, not absolute" }
        let scalars = Array(pattern.unicodeScalars)
        if scalars.count >= 2, scalars[1] == ":", ASCII.isLetter(scalars[0]) {
            return "must be relative to the workspace, not on a drive"
        }
        let segments = pattern.split(omittingEmptySubsequences: false) { $0 == "/" || $0 == "\\" }
        if segments.contains("..") { return "must not contain '..' (it would leave the workspace)" }
        return nil
    }
}
