import AHConfig
import AHTestSupport
import Foundation
import XCTest

/// A command shaped like `ah debug quic-echo` plus the kinds of argument the fill-in must
/// handle: a repeating option, a flag, a `--x`/`--no-x` pair, a counter, a short name,
/// a positional, and the names that are never filled.
enum Fixtures {
    static let path = ["debug", "quic-echo"]

    static let command = CommandDescription(commandName: "quic-echo", arguments: [
        option("connect"),
        option("bytes"),
        option("streams", short: "s"),
        option("server-id"),
        option("allow-id", repeating: true),
        flag("json"),
        flag("verify"), flag("no-verify"),
        ArgumentDescription(kind: .flag, names: [.short("v"), .long("verbose")], isRepeating: true),
        option("config"),
        option("log-level"),
        option("experimental-thing"),
        flag("help", short: "h"),
        ArgumentDescription(kind: .positional, names: [.long("words")], isRepeating: true),
    ])

    static func option(_ name: String, short: Character? = nil, repeating: Bool = false) -> ArgumentDescription {
        ArgumentDescription(kind: .option, names: [.long(name)] + (short.map { [.short($0)] } ?? []), isRepeating: repeating)
    }

    static func flag(_ name: String, short: Character? = nil) -> ArgumentDescription {
        ArgumentDescription(kind: .flag, names: [.long(name)] + (short.map { [.short($0)] } ?? []))
    }

    /// Writes `toml` to a file in `directory` and loads it the way `ah` does.
    static func config(_ toml: String, in directory: TemporaryDirectory, name: String = "ah.toml") throws -> ConfigDocument {
        let url = directory.file(name)
        try Data(toml.utf8).write(to: url)
        return try ConfigDocument.load(path: url.path)
    }

    /// `OptionFill.fill` for `Fixtures.command`, returning just the arguments.
    static func fill(_ arguments: [String], env: [String: String] = [:], config: ConfigDocument? = nil) throws -> [String] {
        try OptionFill.fill(arguments: arguments, commandPath: path, command: command,
                            environment: env, config: config).arguments
    }

    /// The ConfigError thrown by `body`, or a failure.
    static func configError<T>(file: StaticString = #filePath, line: UInt = #line,
                               _ body: () throws -> T) -> ConfigError? {
        do {
            _ = try body()
            XCTFail("expected a ConfigError", file: file, line: line)
            return nil
        } catch let error as ConfigError {
            XCTAssertFalse(error.description.contains("\n"), "must be one line: \(error)", file: file, line: line)
            return error
        } catch {
            XCTFail("expected a ConfigError, got \(error)", file: file, line: line)
            return nil
        }
    }
}
