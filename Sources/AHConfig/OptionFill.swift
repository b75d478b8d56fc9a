// Options from flags > AH_* environment > config file > defaults, for any command, from the
// command's own description (ArgumentParser's `_dumpHelp()`), so no command lists its
// options twice. The result is an argv that ArgumentParser then parses as if the user had
// typed the missing options, so types, validation and help stay ArgumentParser's job.
//
// Rules (shared/cli.md and docs of GlobalOptions):
// - An option or flag counts as given when any of its names (long, short, single-dash)
//   appears before `--`; then env and file are not consulted for it.
// - Otherwise `AH_<NAME>` (upper-cased, `-` → `_`) wins; an empty variable counts as unset,
//   so `AH_X= ah …` switches a variable off for one run.
// - Otherwise the config file: key `NAME` or `NAME` with `-` → `_`, first in the table of
//   the command path (`[debug.quic-echo]`, `[agent.enroll]`: TOML's dotted headers, i.e.
//   nested tables), then at the top level. Only that exact table is read, not the tables of
//   parent commands, so a key's meaning never depends on how deep the command is. A table
//   named after a subcommand is that command's section, not a value: `[token.create]`
//   does not clash with the `--token` of `executors list`.
// - A `--x` / `--no-x` (or `--enable-x` / `--disable-x`) flag pair is one setting: `x =
//   false` inserts `--no-x`, and a value for either name counts for both.
// - Filled options go in front of the user's arguments, i.e. directly after the command
//   path: before any `--` and any passthrough words. Options use `--NAME=value` so that a
//   value starting with `-` is never mistaken for an option.

public enum OptionFill {
    /// `AH_` + the long name upper-cased with `-` → `_`: `trust-domain` → `AH_TRUST_DOMAIN`.
    /// Every variable that can fill an option starts with this.
    public static let environmentPrefix = "AH_"

    public static func environmentName(for option: String) -> String {
        environmentPrefix + option.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// Names never taken from env or file: ArgumentParser's own (`help`, `version`, …),
    /// `config` (it names the file, and AH_CONFIG is read directly), and experimental
    /// options, which must be asked for explicitly.
    public static func isFillable(_ name: String) -> Bool {
        !["help", "version", "config", "generate-completion-script"].contains(name)
            && !name.hasPrefix("experimental-")
    }

    /// Fills in the options of `command` that `arguments` (the argv after the command path
    /// `commandPath`, e.g. ["debug", "quic-echo"]) does not give.
    /// - Parameter commandTree: the root command's description. With it, a table whose key
    ///   names a subcommand (`[token.create]` while `executors list` looks for `token`) is
    ///   known to be that command's section and skipped; without it, it is a type error.
    /// - Throws: ConfigError naming the variable, or the key and file, for a value of the
    ///   wrong shape (a table for a string, `AH_JSON=maybe`, an array for a single option).
    public static func fill(
        arguments: [String],
        commandPath: [String],
        command: CommandDescription,
        environment: [String: String],
        config: ConfigDocument?,
        commandTree: CommandDescription? = nil
    ) throws(ConfigError) -> FillResult {
        let given = ArgvScan.givenNames(in: arguments)
        var inserted: [String] = []
        var filled: [FilledOption] = []
        for unit in FillUnit.units(of: command.arguments ?? []) where unit.allNames.isDisjoint(with: given) {
            var found = try environmentValue(for: unit, environment: environment)
            if found == nil, let config {
                found = try fileValue(for: unit, commandPath: commandPath, document: config, commandTree: commandTree)
            }
            guard let found else { continue }
            inserted += found.tokens
            filled.append(found)
        }
        return FillResult(arguments: inserted + arguments, filled: filled)
    }

    private static func environmentValue(for unit: FillUnit, environment: [String: String]) throws(ConfigError) -> FilledOption? {
        for candidate in unit.candidates {
            let variable = environmentName(for: candidate.name)
            guard let text = environment[variable], !text.isEmpty else { continue }
            let tokens = try ValueRendering.tokens(environment: text, variable: variable, for: candidate)
            return FilledOption(name: candidate.name, source: .environment(variable: variable), tokens: tokens)
        }
        return nil
    }

    private static func fileValue(for unit: FillUnit, commandPath: [String], document: ConfigDocument,
                                  commandTree: CommandDescription?) throws(ConfigError) -> FilledOption? {
        // The command's own table first: it is more specific than the top level.
        let sections = commandPath.isEmpty ? [[]] : [commandPath, []]
        for section in sections {
            guard let table = document.table(forCommandPath: section) else { continue }
            let subsections = subcommandNames(at: section, in: commandTree)
            for candidate in unit.candidates {
                for key in configKeys(for: candidate.name) {
                    guard let value = table[key] else { continue }
                    if case .table = value, subsections.contains(key) { continue }
                    let source = ValueSource.file(path: document.path, section: section, key: key)
                    let tokens = try ValueRendering.tokens(file: value, source: source, for: candidate)
                    return FilledOption(name: candidate.name, source: source, tokens: tokens)
                }
            }
        }
        return nil
    }

    /// Names (and aliases) of the subcommands of the command at `path`: the keys in its
    /// table that are sections of their own.
    static func subcommandNames(at path: [String], in tree: CommandDescription?) -> Set<String> {
        var command = tree
        for name in path { command = command?.subcommand(named: name) }
        return Set((command?.subcommands ?? []).flatMap { [$0.commandName] + ($0.aliases ?? []) })
    }

    /// `data-dir` may be written `data-dir` or `data_dir` (the spelling TOML users expect).
    public static func configKeys(for option: String) -> [String] {
        let underscored = option.replacingOccurrences(of: "-", with: "_")
        return underscored == option ? [option] : [option, underscored]
    }
}
