import AHConfig
import AHTestSupport
import XCTest

/// flag > AH_* environment > config file > default, and how "already given" is detected.
final class PrecedenceTests: XCTestCase {
    func testNothingFromEnvOrFileLeavesArgumentsAlone() throws {
        XCTAssertEqual(try Fixtures.fill(["--connect", "h:1"]), ["--connect", "h:1"])
    }

    func testFlagBeatsEnvironmentBeatsFile() throws {
        let directory = try TemporaryDirectory()
        let config = try Fixtures.config("bytes = 1000\nstreams = 3\nserver-id = \"file-id\"\n", in: directory)
        let env = ["AH_BYTES": "2000", "AH_STREAMS": "4"]
        let filled = try Fixtures.fill(["--bytes", "3000"], env: env, config: config)
        // bytes: typed; streams: env over file; server-id: file only.
        XCTAssertEqual(filled, ["--streams=4", "--server-id=file-id", "--bytes", "3000"])
    }

    func testFileFillsWhatEnvironmentDoesNot() throws {
        let directory = try TemporaryDirectory()
        let config = try Fixtures.config("bytes = 1000\n", in: directory)
        XCTAssertEqual(try Fixtures.fill([], config: config), ["--bytes=1000"])
    }

    func testDefaultsStayWithArgumentParserWhenNothingIsSet() throws {
        // Nothing inserted: the command's own default applies.
        XCTAssertEqual(try Fixtures.fill([], env: ["UNRELATED": "1", "AH_UNKNOWN_OPTION": "x"]), [])
    }

    func testEmptyEnvironmentVariableCountsAsUnset() throws {
        let directory = try TemporaryDirectory()
        let config = try Fixtures.config("bytes = 1000\n", in: directory)
        XCTAssertEqual(try Fixtures.fill([], env: ["AH_BYTES": ""], config: config), ["--bytes=1000"])
    }

    func testEqualsFormCountsAsGiven() throws {
        XCTAssertEqual(try Fixtures.fill(["--bytes=5"], env: ["AH_BYTES": "9"]), ["--bytes=5"])
    }

    func testShortNameCountsAsGiven() throws {
        XCTAssertEqual(try Fixtures.fill(["-s", "2"], env: ["AH_STREAMS": "9"]), ["-s", "2"])
        // Combined short flags: `-vs 2` gives both -v and -s.
        XCTAssertEqual(try Fixtures.fill(["-vs", "2"], env: ["AH_STREAMS": "9", "AH_VERBOSE": "1"]), ["-vs", "2"])
    }

    func testOptionsAreInsertedBeforeTheTerminatorAndPassthroughWords() throws {
        let filled = try Fixtures.fill(["word", "--", "--bytes", "7"], env: ["AH_BYTES": "9"])
        // `--bytes` after `--` is passthrough, not the option: env still applies, in front.
        XCTAssertEqual(filled, ["--bytes=9", "word", "--", "--bytes", "7"])
    }

    func testValuesStartingWithADashStayOneToken() throws {
        XCTAssertEqual(try Fixtures.fill([], env: ["AH_SERVER_ID": "-odd"]), ["--server-id=-odd"])
    }

    func testEnvironmentNameIsUpperCaseWithUnderscores() {
        XCTAssertEqual(OptionFill.environmentName(for: "trust-domain"), "AH_TRUST_DOMAIN")
        XCTAssertEqual(OptionFill.environmentName(for: "bytes"), "AH_BYTES")
    }

    func testHelpVersionConfigAndExperimentalAreNeverFilled() throws {
        let directory = try TemporaryDirectory()
        let config = try Fixtures.config("help = true\nconfig = \"x.toml\"\nexperimental-thing = \"1\"\n", in: directory)
        let env = ["AH_HELP": "1", "AH_CONFIG": "/nope.toml", "AH_EXPERIMENTAL_THING": "1", "AH_VERSION": "1"]
        XCTAssertEqual(try Fixtures.fill([], env: env, config: config), [])
    }

    func testLogLevelIsAnOrdinaryOption() throws {
        XCTAssertEqual(try Fixtures.fill([], env: ["AH_LOG_LEVEL": "debug"]), ["--log-level=debug"])
    }

    func testFilledOptionsRecordTheirSource() throws {
        let directory = try TemporaryDirectory()
        let config = try Fixtures.config("[debug.quic-echo]\nstreams = 2\n", in: directory)
        let result = try OptionFill.fill(arguments: [], commandPath: Fixtures.path, command: Fixtures.command,
                                         environment: ["AH_BYTES": "lots"], config: config)
        XCTAssertEqual(result.filled.map(\.source), [
            .environment(variable: "AH_BYTES"),
            .file(path: config.path, section: ["debug", "quic-echo"], key: "streams"),
        ])
        // ArgumentParser's complaint about --bytes gets the variable appended …
        XCTAssertEqual(result.explain("The value 'lots' is invalid for '--bytes <n>'"),
                       "The value 'lots' is invalid for '--bytes <n>' (from AH_BYTES)")
        XCTAssertTrue(result.explain("--streams '0' must be at least 1")
            .hasSuffix("(from key 'streams' in [debug.quic-echo] of config file '\(config.path)')"))
        // … but not to messages about other options, or longer names sharing a prefix.
        XCTAssertEqual(result.explain("bad --connect"), "bad --connect")
        XCTAssertEqual(result.explain("bad --bytes-per-x"), "bad --bytes-per-x")
    }
}
