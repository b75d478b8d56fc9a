import AHConfig
import AHTestSupport
import XCTest

/// Repeating options, flags, flag pairs and counters, from env and from TOML.
final class ValueShapeTests: XCTestCase {
    func testRepeatingOptionFromCommaSeparatedEnvironment() throws {
        XCTAssertEqual(try Fixtures.fill([], env: ["AH_ALLOW_ID": "spiffe://a/x, spiffe://a/y,,"]),
                       ["--allow-id=spiffe://a/x", "--allow-id=spiffe://a/y"])
    }

    func testRepeatingOptionFromTOMLArray() throws {
        let directory = try TemporaryDirectory()
        let config = try Fixtures.config("allow-id = [\"spiffe://a/x\", \"spiffe://a,b/y\"]\n", in: directory)
        // Array elements are never split on commas.
        XCTAssertEqual(try Fixtures.fill([], config: config), ["--allow-id=spiffe://a/x", "--allow-id=spiffe://a,b/y"])
    }

    func testRepeatingOptionFromSingleTOMLValue() throws {
        let directory = try TemporaryDirectory()
        let config = try Fixtures.config("allow_id = \"spiffe://a/x\"\n", in: directory)
        XCTAssertEqual(try Fixtures.fill([], config: config), ["--allow-id=spiffe://a/x"])
    }

    func testTypedRepeatingOptionReplacesEnvironmentAndFile() throws {
        XCTAssertEqual(try Fixtures.fill(["--allow-id", "z"], env: ["AH_ALLOW_ID": "x,y"]), ["--allow-id", "z"])
    }

    func testFlagWordsFromEnvironment() throws {
        for word in ["true", "1", "yes", "on", "TRUE", "Yes"] {
            XCTAssertEqual(try Fixtures.fill([], env: ["AH_JSON": word]), ["--json"], word)
        }
        for word in ["false", "0", "no", "off", "OFF"] {
            XCTAssertEqual(try Fixtures.fill([], env: ["AH_JSON": word]), [], word)
        }
    }

    func testBadFlagWordIsAnErrorNamingTheVariable() {
        let error = Fixtures.configError { try Fixtures.fill([], env: ["AH_JSON": "maybe"]) }
        XCTAssertTrue(error?.description.contains("AH_JSON='maybe'") ?? false, "\(String(describing: error))")
    }

    func testFlagsFromTOML() throws {
        let directory = try TemporaryDirectory()
        XCTAssertEqual(try Fixtures.fill([], config: Fixtures.config("json = true\n", in: directory)), ["--json"])
        XCTAssertEqual(try Fixtures.fill([], config: Fixtures.config("json = false\n", in: directory)), [])
        XCTAssertEqual(try Fixtures.fill([], config: Fixtures.config("json = \"yes\"\n", in: directory)), ["--json"])
        let config = try Fixtures.config("json = \"perhaps\"\n", in: directory)
        let error = Fixtures.configError { try Fixtures.fill([], config: config) }
        XCTAssertTrue(error?.description.contains("key 'json'") ?? false, "\(String(describing: error))")
        XCTAssertTrue(error?.description.contains(config.path) ?? false, "\(String(describing: error))")
    }

    func testInvertedFlagPairIsOneSetting() throws {
        // false for the positive name inserts the negative flag, overriding a true default.
        XCTAssertEqual(try Fixtures.fill([], env: ["AH_VERIFY": "false"]), ["--no-verify"])
        XCTAssertEqual(try Fixtures.fill([], env: ["AH_NO_VERIFY": "1"]), ["--no-verify"])
        // Typing either side means neither env nor file is read for the pair.
        XCTAssertEqual(try Fixtures.fill(["--no-verify"], env: ["AH_VERIFY": "1"]), ["--no-verify"])
        // Env for one side beats the file for the other.
        let directory = try TemporaryDirectory()
        let config = try Fixtures.config("no-verify = true\n", in: directory)
        XCTAssertEqual(try Fixtures.fill([], env: ["AH_VERIFY": "yes"], config: config), ["--verify"])
    }

    func testCountingFlagTakesACount() throws {
        XCTAssertEqual(try Fixtures.fill([], env: ["AH_VERBOSE": "3"]), ["--verbose", "--verbose", "--verbose"])
        XCTAssertEqual(try Fixtures.fill([], env: ["AH_VERBOSE": "on"]), ["--verbose"])
    }

    func testNumbersAndBooleansBecomeText() throws {
        let directory = try TemporaryDirectory()
        let config = try Fixtures.config("bytes = 2048\nstreams = 1.5\nserver-id = true\n", in: directory)
        XCTAssertEqual(try Fixtures.fill([], config: config), ["--bytes=2048", "--streams=1.5", "--server-id=true"])
    }

    func testTableWhereAValueIsExpectedNamesKeyAndFile() throws {
        let directory = try TemporaryDirectory()
        let config = try Fixtures.config("[bytes]\nsize = 1\n", in: directory)
        let error = Fixtures.configError { try Fixtures.fill([], config: config) }
        let text = error?.description ?? ""
        XCTAssertTrue(text.contains("key 'bytes'") && text.contains(config.path) && text.contains("a table"), text)
    }

    func testArrayForASingleOptionIsAnError() throws {
        let directory = try TemporaryDirectory()
        let config = try Fixtures.config("[debug.quic-echo]\nconnect = [\"a:1\", \"b:2\"]\n", in: directory)
        let error = Fixtures.configError { try Fixtures.fill([], config: config) }
        let text = error?.description ?? ""
        XCTAssertTrue(text.contains("key 'connect' in [debug.quic-echo]") && text.contains(config.path), text)
    }

    func testNestedArrayElementIsAnError() throws {
        let directory = try TemporaryDirectory()
        let config = try Fixtures.config("allow-id = [[\"x\"]]\n", in: directory)
        let error = Fixtures.configError { try Fixtures.fill([], config: config) }
        XCTAssertTrue(error?.description.contains("key 'allow-id'") ?? false, "\(String(describing: error))")
    }

    func testDatesAreNotOptionValues() throws {
        let directory = try TemporaryDirectory()
        let config = try Fixtures.config("server-id = 2024-01-02\n", in: directory)
        let error = Fixtures.configError { try Fixtures.fill([], config: config) }
        XCTAssertTrue(error?.description.contains("key 'server-id'") ?? false, "\(String(describing: error))")
    }
}
