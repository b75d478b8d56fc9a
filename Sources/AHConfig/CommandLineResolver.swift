// The whole step between "argv as typed" and "argv for ArgumentParser", for `ah`'s entry
// point: find and read the config file, fill in the command's missing options, collect
// warnings. Kept here (not in the executable) so that it is tested as a function.

public enum CommandLineResolver {
    public struct Resolved: Sendable {
        /// The arguments after the command path, options filled in.
        public var fill: FillResult
        /// Non-fatal messages for stderr (unknown config keys).
        public var warnings: [String]
    }

    /// - Parameters:
    ///   - arguments: argv after the command path.
    ///   - commandPath: the command path without the root, e.g. ["debug", "quic-echo"].
    ///   - command: the resolved command's description.
    ///   - commandTree: the root command's description, only needed (and only computed)
    ///     when there is a config file: to tell command sections from option values, and
    ///     to warn about keys no command reads.
    /// - Throws: ConfigError (exit 2) for a missing or invalid config file or a bad value.
    public static func resolve(
        arguments: [String],
        commandPath: [String],
        command describe: @autoclosure () -> CommandDescription,
        environment: [String: String],
        commandTree: () -> CommandDescription?
    ) throws(ConfigError) -> Resolved {
        // Describing a command costs about a fifth of a short command's CPU (ArgumentParser
        // renders and we decode its JSON), so it is done only when something can be filled
        // in: a config file, or a non-empty AH_* variable. The fan-out path runs `ah` per call.
        var described: CommandDescription?
        func command() -> CommandDescription {
            if let described { return described }
            let made = describe()
            described = made
            return made
        }
        // Help must work even when the environment or the file is broken.
        if ArgvScan.requestsHelp(arguments) || (arguments.first == "help" && isHelpSubcommand(arguments, of: command())) {
            return Resolved(fill: FillResult(arguments: arguments, filled: []), warnings: [])
        }
        var document: ConfigDocument?
        if let path = ArgvScan.configPath(arguments: arguments, environment: environment) {
            document = try ConfigDocument.load(path: path)
        }
        let fillable = document != nil || environment.contains { $0.key.hasPrefix(OptionFill.environmentPrefix) && !$0.value.isEmpty }
        guard fillable else { return Resolved(fill: FillResult(arguments: arguments, filled: []), warnings: []) }
        let tree = document == nil ? nil : commandTree()
        let fill = try OptionFill.fill(arguments: arguments, commandPath: commandPath, command: command(),
                                       environment: environment, config: document, commandTree: tree)
        var warnings: [String] = []
        if let document, let tree { warnings = document.unknownKeyWarnings(commandTree: tree) }
        return Resolved(fill: fill, warnings: warnings)
    }

    /// `ah help debug` / `ah debug help`: the group's `help` subcommand. ArgumentParser
    /// lists `help` among every described command's subcommands, so only a command with
    /// other subcommands (a group) counts; for a leaf, `help` is an ordinary word.
    static func isHelpSubcommand(_ arguments: [String], of command: CommandDescription) -> Bool {
        arguments.first == "help" && (command.subcommands ?? []).contains { $0.commandName != "help" }
    }
}
