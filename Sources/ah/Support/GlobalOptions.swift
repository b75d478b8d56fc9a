import ArgumentParser
import Logging

/// Options every `ah` command takes: `--config FILE` and `--log-level LEVEL`.
///
/// How a command adopts them — one line in the command struct:
///
///     @OptionGroup var global: GlobalOptions
///
/// Nothing else is needed. `EntryPoint` fills every option of every command from
/// `AH_<NAME>` and from the config file before ArgumentParser parses (see AHConfig's
/// `OptionFill`), and applies `--log-level` before `run()`. Declaring `--config` here is
/// what makes ArgumentParser accept it and `--help` document it; EntryPoint reads the file
/// itself, before parsing, because the file supplies the other options' values.
///
/// Config file keys are the long option names (`data-dir` or `data_dir`) at the top level
/// or in the table of the command path, which wins: `[serve]`, `[agent.enroll]`,
/// `[debug.quic-echo]`. Repeatable options take TOML arrays (or, in the environment, a
/// comma-separated list); flags take true/false.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .customLong("config"),
        help: ArgumentHelp("TOML file with option values; flags > AH_* environment > this file > defaults", valueName: "file")
    )
    var config: String?

    @Option(
        name: .customLong("log-level"),
        help: ArgumentHelp("Log level for stderr.", valueName: "level")
    )
    var logLevel: LogLevel = .info

    @Option(
        name: .customLong("log-format"),
        help: ArgumentHelp("text: one readable line per record; json: one JSON object per line, for log shippers.", valueName: "text|json")
    )
    var logFormat: LogFormat = .text

    /// The GlobalOptions of a parsed command, found by reflection so that commands need no
    /// extra protocol conformance; nil for a command that has not adopted them.
    static func of(_ command: Any) -> GlobalOptions? {
        for child in Mirror(reflecting: command).children {
            if let group = child.value as? OptionGroup<GlobalOptions> { return group.wrappedValue }
        }
        return nil
    }
}

extension LogFormat: ExpressibleByArgument {}

/// swift-log's levels as an argument (its `Logger.Level` is not ours to conform).
enum LogLevel: String, CaseIterable, ExpressibleByArgument, Sendable {
    case trace, debug, info, notice, warning, error, critical

    var loggerLevel: Logger.Level { Logger.Level(rawValue: rawValue) ?? .info }
}
