import AHConfig
import XCTest

/// The Codable subset of ArgumentParser's ToolInfoV0 reads what `_dumpHelp()` prints
/// (sample trimmed from `ah debug quic-echo --experimental-dump-help`).
final class CommandDescriptionTests: XCTestCase {
    static let sample = """
        {"serializationVersion": 0, "command": {"commandName": "quic-echo", "shouldDisplay": true,
         "arguments": [
          {"isOptional": true, "isRepeating": false, "kind": "option", "names": [{"kind": "long", "name": "bytes"}],
           "parsingStrategy": "default", "preferredName": {"kind": "long", "name": "bytes"}, "shouldDisplay": true,
           "valueName": "n", "defaultValue": "ByteCount(value: 1048576)"},
          {"isOptional": true, "isRepeating": false, "kind": "flag", "names": [{"kind": "long", "name": "json"}],
           "parsingStrategy": "default", "shouldDisplay": true, "valueName": "json"},
          {"isOptional": true, "isRepeating": true, "kind": "positional", "parsingStrategy": "default",
           "shouldDisplay": true, "valueName": "words"}],
         "subcommands": [{"commandName": "help", "shouldDisplay": true, "superCommands": ["quic-echo"]}]}}
        """

    func testDecodesDumpHelpOutput() throws {
        let command = try ToolDescription.decode(Self.sample).command
        XCTAssertEqual(command.commandName, "quic-echo")
        let arguments = try XCTUnwrap(command.arguments)
        XCTAssertEqual(arguments.map(\.kind), [.option, .flag, .positional])
        XCTAssertEqual(arguments[0].longNames, ["bytes"])
        XCTAssertNil(arguments[2].names, "positionals have no names")
        XCTAssertTrue(arguments[2].isRepeating)
        XCTAssertEqual(command.subcommand(named: "help")?.commandName, "help")
    }

    func testDecodedDescriptionDrivesTheFill() throws {
        let command = try ToolDescription.decode(Self.sample).command
        let result = try OptionFill.fill(arguments: ["w"], commandPath: ["debug", "quic-echo"], command: command,
                                         environment: ["AH_BYTES": "2048", "AH_JSON": "yes", "AH_WORDS": "x"], config: nil)
        XCTAssertEqual(result.arguments, ["--bytes=2048", "--json", "w"], "positionals are never filled")
    }
}
