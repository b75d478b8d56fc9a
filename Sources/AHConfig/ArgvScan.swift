// What the user already typed. Only tokens before a `--` terminator count: everything
// after it is passthrough (a remote command line) and must neither be inspected nor moved.

public enum ArgvScan {
    /// The tokens that may hold options: all of them up to (not including) the first `--`.
    public static func optionRegion(_ arguments: [String]) -> ArraySlice<String> {
        arguments.prefix { $0 != "--" }
    }

    /// Every name the user gave: `--NAME` and `--NAME=v` give a long name; `-abc` gives the
    /// single-dash name `abc` and the short names `a`, `b`, `c` (ArgumentParser reads `-abc`
    /// either way). Over-counting only means env/file is not consulted for that option,
    /// never that a typed value is overridden.
    public static func givenNames(in arguments: [String]) -> Set<ArgumentDescription.Name> {
        var names: Set<ArgumentDescription.Name> = []
        for token in optionRegion(arguments) where token.hasPrefix("-") && token.count > 1 {
            if token.hasPrefix("--") {
                let name = token.dropFirst(2).prefix { $0 != "=" }
                names.insert(.long(String(name)))
            } else {
                let word = token.dropFirst().prefix { $0 != "=" }
                names.insert(ArgumentDescription.Name(kind: .longWithSingleDash, name: String(word)))
                for letter in word { names.insert(.short(letter)) }
            }
        }
        return names
    }

    /// The config file: the last `--config FILE` / `--config=FILE` before `--`, else a
    /// non-empty `AH_CONFIG`. A trailing `--config` without a value is left for
    /// ArgumentParser to report.
    public static func configPath(arguments: [String], environment: [String: String]) -> String? {
        let region = Array(optionRegion(arguments))
        var found: String?
        var index = 0
        while index < region.count {
            let token = region[index]
            if token == "--config", index + 1 < region.count {
                found = region[index + 1]
                index += 1
            } else if token.hasPrefix("--config=") {
                found = String(token.dropFirst("--config=".count))
            }
            index += 1
        }
        if let found { return found }
        if let fromEnvironment = environment["AH_CONFIG"], !fromEnvironment.isEmpty { return fromEnvironment }
        return nil
    }

    /// True when the user asks for help: then nothing is filled in, so that a broken
    /// environment or config file cannot hide the help text that would explain it.
    public static func requestsHelp(_ arguments: [String]) -> Bool {
        optionRegion(arguments).contains { ["-h", "--help", "-help", "--experimental-dump-help"].contains($0) }
    }
}
