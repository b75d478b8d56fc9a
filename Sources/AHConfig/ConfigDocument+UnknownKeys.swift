// Keys in the config file that no command reads. They are warnings, not errors: one file
// serves every command (and is often shared between hosts running different versions of
// `ah`), so a key that an older binary does not know must not stop it; but a typo such
// as `trust_domian` would otherwise be silently ignored, so it is reported on stderr.

extension ConfigDocument {
    /// One message per key that is read by no command, given the whole command tree
    /// (`AH._dumpHelp()`): top-level keys must be an option of some command, keys in a
    /// command's table (`[debug.quic-echo]`) an option of that command, and tables must be
    /// named after subcommands. Sorted, for stable output.
    public func unknownKeyWarnings(commandTree: CommandDescription) -> [String] {
        var warnings: [String] = []
        check(root, in: commandTree, path: [], topLevelNames: Self.optionKeys(ofTree: commandTree), into: &warnings)
        return warnings
    }

    private func check(_ table: [String: ConfigValue], in command: CommandDescription, path: [String],
                       topLevelNames: Set<String>, into warnings: inout [String]) {
        let known = path.isEmpty ? topLevelNames : Self.optionKeys(of: command)
        for key in table.keys.sorted() {
            if case .table(let nested) = table[key], let subcommand = command.subcommand(named: key) {
                check(nested, in: subcommand, path: path + [key], topLevelNames: topLevelNames, into: &warnings)
            } else if !known.contains(key) && !(Self.structuredKeys[path]?.contains(key) ?? false) {
                let place = path.isEmpty ? "" : " in \(sectionName(path))"
                warnings.append("config file '\(self.path)': unknown key '\(key)'\(place) ignored")
            }
        }
    }

    /// Tables that a command reads itself rather than as options: `[[serve.acl]]`, the access
    /// point's ACL rules.
    static let structuredKeys: [[String]: Set<String>] = [["serve"]: ["acl"]]

    /// Both spellings of every fillable long name of one command.
    static func optionKeys(of command: CommandDescription) -> Set<String> {
        var keys: Set<String> = []
        for argument in command.arguments ?? [] where argument.kind != .positional {
            for name in argument.longNames where OptionFill.isFillable(name) {
                keys.formUnion(OptionFill.configKeys(for: name))
            }
        }
        return keys
    }

    /// Option keys of a command and all its descendants (what the top level may hold).
    static func optionKeys(ofTree command: CommandDescription) -> Set<String> {
        (command.subcommands ?? []).reduce(optionKeys(of: command)) { $0.union(optionKeys(ofTree: $1)) }
    }
}
