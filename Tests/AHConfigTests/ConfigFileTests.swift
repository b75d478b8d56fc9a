import AHConfig
import AHTestSupport
import XCTest

/// Finding, reading and interpreting `--config FILE`.
final class ConfigFileTests: XCTestCase {
    func testCommandTableBeatsTopLevel() throws {
        let directory = try TemporaryDirectory()
        let config = try Fixtures.config("""
            bytes = 1
            streams = 5
            [debug.quic-echo]
            bytes = 2
            [debug.quic-echo-server]
            streams = 9
            """, in: directory)
        XCTAssertEqual(try Fixtures.fill([], config: config), ["--bytes=2", "--streams=5"])
    }

    func testOnlyTheExactCommandTableIsRead() throws {
        // [debug] belongs to `ah debug`, not to its subcommands.
        let directory = try TemporaryDirectory()
        let config = try Fixtures.config("[debug]\nbytes = 3\n", in: directory)
        XCTAssertEqual(try Fixtures.fill([], config: config), [])
    }

    func testUnderscoreSpellingOfKeys() throws {
        let directory = try TemporaryDirectory()
        let config = try Fixtures.config("server_id = \"x\"\n[debug.quic-echo]\nallow_id = [\"y\"]\n", in: directory)
        XCTAssertEqual(try Fixtures.fill([], config: config), ["--server-id=x", "--allow-id=y"])
    }

    func testBadTOMLNamesTheFileAndLine() throws {
        let directory = try TemporaryDirectory()
        let url = directory.file("bad.toml")
        try Data("bytes = 1\nstreams = = 2\n".utf8).write(to: url)
        let error = Fixtures.configError { try ConfigDocument.load(path: url.path) }
        let text = error?.description ?? ""
        XCTAssertTrue(text.contains(url.path) && text.contains("line 2"), text)
    }

    func testMissingFileAndDirectoryAreErrorsNamingThePath() throws {
        let directory = try TemporaryDirectory()
        let missing = directory.file("nope.toml").path
        XCTAssertTrue(Fixtures.configError { try ConfigDocument.load(path: missing) }?.description.contains(missing) ?? false)
        XCTAssertTrue(Fixtures.configError { try ConfigDocument.load(path: directory.path) }?.description.contains(directory.path) ?? false)
    }

    func testConfigPathFromArgumentsThenEnvironment() {
        let env = ["AH_CONFIG": "/env.toml"]
        XCTAssertEqual(ArgvScan.configPath(arguments: ["--config", "/a.toml"], environment: env), "/a.toml")
        XCTAssertEqual(ArgvScan.configPath(arguments: ["--config=/b.toml"], environment: env), "/b.toml")
        XCTAssertEqual(ArgvScan.configPath(arguments: ["--config", "/a", "--config=/c"], environment: [:]), "/c")
        XCTAssertEqual(ArgvScan.configPath(arguments: [], environment: env), "/env.toml")
        XCTAssertEqual(ArgvScan.configPath(arguments: ["--", "--config", "/p"], environment: [:]), nil)
        XCTAssertEqual(ArgvScan.configPath(arguments: [], environment: ["AH_CONFIG": ""]), nil)
    }

    // Unknown keys are warnings, not errors (see ConfigDocument+UnknownKeys.swift): one
    // file serves every command and every version of `ah`.
    func testUnknownKeysAreWarningsNotErrors() throws {
        let directory = try TemporaryDirectory()
        let config = try Fixtures.config("""
            bytes = 1
            trust_domian = "typo"
            [debug.quic-echo]
            streams = 2
            size = 4
            [nosuchcommand]
            x = 1
            """, in: directory)
        let tree = CommandDescription(commandName: "ah", subcommands: [
            CommandDescription(commandName: "debug", subcommands: [
                Fixtures.command,
                CommandDescription(commandName: "quic-download-server", arguments: [Fixtures.option("size")]),
            ]),
        ])
        XCTAssertEqual(config.unknownKeyWarnings(commandTree: tree), [
            // `size` is an option of another command, not of this table's command.
            "config file '\(config.path)': unknown key 'size' in [debug.quic-echo] ignored",
            "config file '\(config.path)': unknown key 'nosuchcommand' ignored",
            "config file '\(config.path)': unknown key 'trust_domian' ignored",
        ])
        // … and the fill-in still works.
        XCTAssertEqual(try Fixtures.fill([], config: config), ["--bytes=1", "--streams=2"])
    }

    func testResolverReadsTheFileNamedByAHConfig() throws {
        let directory = try TemporaryDirectory()
        let url = directory.file("ah.toml")
        try Data("bytes = 7\nbogus = 1\n".utf8).write(to: url)
        let resolved = try CommandLineResolver.resolve(
            arguments: ["--connect", "h:1"], commandPath: Fixtures.path, command: Fixtures.command,
            environment: ["AH_CONFIG": url.path], commandTree: { Fixtures.command })
        XCTAssertEqual(resolved.fill.arguments, ["--bytes=7", "--connect", "h:1"])
        XCTAssertEqual(resolved.warnings, ["config file '\(url.path)': unknown key 'bogus' ignored"])
    }

    func testResolverReportsABadFile() throws {
        let directory = try TemporaryDirectory()
        let missing = directory.file("missing.toml").path
        let error = Fixtures.configError {
            try CommandLineResolver.resolve(arguments: ["--config", missing], commandPath: Fixtures.path,
                                            command: Fixtures.command, environment: [:], commandTree: { nil })
        }
        XCTAssertTrue(error?.description.contains(missing) ?? false, "\(String(describing: error))")
    }

    func testHelpIsNotBlockedByABrokenEnvironmentOrFile() throws {
        let resolved = try CommandLineResolver.resolve(
            arguments: ["--help"], commandPath: Fixtures.path, command: Fixtures.command,
            environment: ["AH_CONFIG": "/does/not/exist.toml", "AH_JSON": "maybe"], commandTree: { nil })
        XCTAssertEqual(resolved.fill.arguments, ["--help"])
    }
}

extension ConfigFileTests {
    func testHelpSubcommandOfAGroupIsNotBlockedEither() throws {
        let group = CommandDescription(commandName: "debug", subcommands: [Fixtures.command, CommandDescription(commandName: "help")])
        let broken = ["AH_CONFIG": "/does/not/exist.toml"]
        let resolved = try CommandLineResolver.resolve(arguments: ["help", "quic-echo"], commandPath: ["debug"],
                                                       command: group, environment: broken, commandTree: { nil })
        XCTAssertEqual(resolved.fill.arguments, ["help", "quic-echo"])
        // For a leaf, `help` is just a word: the broken file is still reported.
        XCTAssertNotNil(Fixtures.configError {
            try CommandLineResolver.resolve(arguments: ["help"], commandPath: Fixtures.path, command: Fixtures.command,
                                            environment: broken, commandTree: { nil })
        })
    }
}

extension ConfigFileTests {
    /// `ah token create` has the section `[token.create]`; `ah executors list` has an
    /// option `--token`. The section must not be read as a (badly typed) token.
    func testSectionNamedLikeAnOptionIsASectionNotAValue() throws {
        let list = CommandDescription(commandName: "list", arguments: [Fixtures.option("token"), Fixtures.option("remote-server")])
        let tree = CommandDescription(commandName: "ah", subcommands: [
            CommandDescription(commandName: "token", subcommands: [
                CommandDescription(commandName: "create", arguments: [Fixtures.option("ttl")]),
            ]),
            CommandDescription(commandName: "executors", subcommands: [list]),
        ])
        let directory = try TemporaryDirectory()
        let config = try Fixtures.config("remote-server = \"https://ap\"\n[token.create]\nttl = \"1h\"\n", in: directory)
        let filled = try OptionFill.fill(arguments: [], commandPath: ["executors", "list"], command: list,
                                         environment: [:], config: config, commandTree: tree)
        XCTAssertEqual(filled.arguments, ["--remote-server=https://ap"])
        XCTAssertEqual(config.unknownKeyWarnings(commandTree: tree), [])
        // Without the tree there is no telling, and a table is no token.
        let error = Fixtures.configError {
            try OptionFill.fill(arguments: [], commandPath: ["executors", "list"], command: list,
                                environment: [:], config: config)
        }
        XCTAssertTrue(error?.description.contains("key 'token'") ?? false, "\(String(describing: error))")
    }
}
