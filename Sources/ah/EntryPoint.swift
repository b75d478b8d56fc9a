import AHConfig
import ArgumentParser
import Foundation

/// Parses argv and runs the command, mapping every outcome to shared/cli.md's exit codes.
///
/// Before ArgumentParser sees argv, the command's missing options are filled in from
/// AH_* variables and the `--config` file (AHConfig's `CommandLineResolver`), using the
/// command's own description from `_dumpHelp()`; so every option of every command gets
/// flag > env > file > default without the command doing anything.
@main
enum EntryPoint {
    static func main() async {
        let typed = Array(CommandLine.arguments.dropFirst())
        let path = resolveCommandPath(typed)
        let resolved: CommandLineResolver.Resolved
        do {
            resolved = try CommandLineResolver.resolve(
                arguments: Array(typed.dropFirst(path.tokenCount)),
                commandPath: path.names,
                command: describe(path.command),
                environment: ProcessInfo.processInfo.environment,
                commandTree: { describe(AH.self) }
            )
        } catch {
            fail(error.description, code: 2)
        }
        for warning in resolved.warnings {
            FileHandle.standardError.write(Data("ah: warning: \(warning)\n".utf8))
        }
        let fill = resolved.fill
        do {
            var command = try AH.parseAsRoot(Array(typed.prefix(path.tokenCount)) + fill.arguments)
            if let global = GlobalOptions.of(command) {
                CLILogging.configure(level: global.logLevel.loggerLevel, format: global.logFormat)
            }
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as CLIError {
            // A bad value that came from env or file: say which variable or key it was.
            fail(error.exitCode == 2 ? fill.explain(error.message) : error.message, code: error.exitCode)
        } catch {
            let code = AH.exitCode(for: error)
            if code == .validationFailure {
                // cli.md: bad usage is exit 2 with one line naming the bad value.
                let message = AH.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid usage"
                fail(fill.explain(message), code: 2)
            }
            AH.exit(withError: error)
        }
    }

    /// The subcommand path at the start of argv: `debug quic-echo --bytes 1` → the
    /// `DebugQUICEchoCommand` type, names ["debug", "quic-echo"], 2 tokens. Stops at the
    /// first token that is not a subcommand name (an option, a positional, `help`), then
    /// follows default subcommands, which ArgumentParser runs without their name being
    /// typed (so `names` may be longer than `tokenCount`).
    static func resolveCommandPath(_ arguments: [String]) -> (command: ParsableCommand.Type, names: [String], tokenCount: Int) {
        var command: ParsableCommand.Type = AH.self
        var names: [String] = []
        for token in arguments {
            guard let next = command.configuration.subcommands.first(where: {
                $0._commandName == token || $0.configuration.aliases.contains(token)
            }) else { break }
            command = next
            names.append(next._commandName)  // canonical name even when an alias was typed: it names the config table
        }
        let tokenCount = names.count
        if arguments.dropFirst(tokenCount).first != "help" {
            while let fallback = command.configuration.defaultSubcommand {
                command = fallback
                names.append(fallback._commandName)
            }
        }
        return (command, names, tokenCount)
    }

    /// A command's options as ArgumentParser describes them. Its own JSON cannot fail to
    /// decode unless ArgumentParser changed format: that is a bug, reported as such.
    static func describe(_ command: ParsableCommand.Type) -> CommandDescription {
        do {
            return try ToolDescription.decode(command._dumpHelp()).command
        } catch {
            fail("internal error: cannot read the option description of '\(command._commandName)': \(error)", code: 1)
        }
    }

    static func fail(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("ah: \(message)\n".utf8))
        exit(code)
    }
}
