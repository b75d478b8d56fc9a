import AHFleet
import AHTestSupport
import Foundation
import XCTest

/// `--fileset-data` and `--fileset-file`: the accepted shapes, and an error naming the field
/// for every rule.
final class FilesetSourceTests: XCTestCase {
    let context = FleetLoadContext(homeDirectory: "/home/tester", userName: "tester")

    func testURLEncodedSetWithRepeatedIncludesAndEscapes() throws {
        let set = try FilesetSource.parseData("name=windows-exe&include=target/release/*.exe&include=dist%2Fmy+app&exclude=*.pdb"
                                              + "&required=YES&dest=./out", baseDirectory: "/work/repo", context: context)
        XCTAssertEqual(set, Fileset(name: "windows-exe", include: ["target/release/*.exe", "dist/my app"], exclude: ["*.pdb"],
                                    required: true, dest: "/work/repo/out"))
        let seed = try FilesetSource.parseData("name=binaries&include=dist/*&dest=./artifacts", baseDirectory: "/r", context: context)
        XCTAssertEqual(seed, Fileset(name: "binaries", include: ["dist/*"], required: false, dest: "/r/artifacts"))
        XCTAssertEqual(try FilesetSource.parseData("name=a&include=x&dest=~/drop", baseDirectory: "/r", context: context).dest,
                       "/home/tester/drop")
        for (text, expected) in [("yes", true), ("no", false), ("true", true), ("false", false), ("1", true), ("0", false)] {
            XCTAssertEqual(try FilesetSource.parseData("name=a&include=x&required=\(text)", baseDirectory: "/", context: context).required,
                           expected, text)
        }
    }

    func testDataErrorsNameTheField() {
        let cases: [(String, String, String)] = [
            ("include=x", "field 'name'", "is required"),
            ("name=bad name&include=x", "field 'name' = \"bad name\"", "letters, digits"),
            ("name=a", "field 'include'", "at least one"),
            ("name=a&include=x&required=maybe", "field 'required' = \"maybe\"", "yes, no, true, false, 1, 0"),
            ("name=a&include=x&colour=red", "field 'colour' = \"red\"", "unknown field"),
            ("name=a&name=b&include=x", "field 'name' = \"b\"", "more than once"),
            ("name=a&include=/etc/passwd", "field 'include[0]' = \"/etc/passwd\"", "relative"),
            ("name=a&include=x&include=../up", "field 'include[1]' = \"../up\"", "'..'"),
            ("name=a&include=x&exclude=a/../../b", "field 'exclude[0]'", "'..'"),
            ("name=a&include=%ZZ", "field 'include'", "URL encoding"),
            ("name=a&include", "field 'include'", "no value"),
        ]
        for (text, field, reason) in cases {
            XCTAssertThrowsError(try FilesetSource.parseData(text, baseDirectory: "/", context: context), text) { error in
                let message = "\(error)"
                XCTAssertTrue(message.hasPrefix("--fileset-data '"), message)
                XCTAssertTrue(message.contains(field), "\(text): \(message)")
                XCTAssertTrue(message.contains(reason), "\(text): \(message)")
            }
        }
    }

    func testTOMLFileOneSetAListAndNamedTables() throws {
        let one = try FilesetSource.parseFile(text: """
            name = "release"
            include = ["target/release/*"]
            exclude = ["*.d", "*.rlib"]
            required = true
            dest = "out"
            """, source: "f", json: false, baseDirectory: "/repo", context: context)
        XCTAssertEqual(one, [Fileset(name: "release", include: ["target/release/*"], exclude: ["*.d", "*.rlib"], required: true,
                                     dest: "/repo/out")])
        let list = try FilesetSource.parseFile(text: """
            [[filesets]]
            name = "a"
            include = "one"          # a single string is a list of one
            required = "no"

            [[filesets]]
            name = "b"
            include = ["two", "three/**"]
            """, source: "f", json: false, baseDirectory: "/repo", context: context)
        XCTAssertEqual(list, [Fileset(name: "a", include: ["one"]), Fileset(name: "b", include: ["two", "three/**"])])
        let named = try FilesetSource.parseFile(text: """
            [filesets.linux-bin]
            include = ["target/release/myapp"]
            required = 1
            """, source: "f", json: false, baseDirectory: "/repo", context: context)
        XCTAssertEqual(named, [Fileset(name: "linux-bin", include: ["target/release/myapp"], required: true)])
    }

    func testJSONFileOneSetAndAList() throws {
        let one = try FilesetSource.parseFile(text: #"{"name":"mac-app","include":["target/release/*.app/**"],"required":"yes"}"#,
                                              source: "f", json: true, baseDirectory: "/repo", context: context)
        XCTAssertEqual(one, [Fileset(name: "mac-app", include: ["target/release/*.app/**"], required: true)])
        let list = try FilesetSource.parseFile(text: #"[{"name":"a","include":["x"],"required":false},{"name":"b","include":"y","dest":"/abs"}]"#,
                                               source: "f", json: true, baseDirectory: "/repo", context: context)
        XCTAssertEqual(list, [Fileset(name: "a", include: ["x"]), Fileset(name: "b", include: ["y"], dest: "/abs")])
        let wrapped = try FilesetSource.parseFile(text: #"{"filesets":[{"name":"c","include":["z"]}]}"#,
                                                  source: "f", json: true, baseDirectory: "/repo", context: context)
        XCTAssertEqual(wrapped.map(\.name), ["c"])
    }

    func testFileErrorsNameTheField() {
        let cases: [(String, Bool, String, String)] = [
            (#"{"name":"a","include":["x"],"requird":true}"#, true, "field 'requird'", "unknown field"),
            (#"[{"name":"a","include":["x"]},{"name":"b","include":[]}]"#, true, "field '[1].include'", "at least one"),
            (#"{"name":"a","include":["x"],"required":"perhaps"}"#, true, "field 'required' = \"perhaps\"", "yes, no"),
            (#"{"name":"a","include":[3]}"#, true, "field 'include[0]' = 3", "must be a string"),
            (#"{"name":"a","include":["x"],"required":2}"#, true, "field 'required' = \"2\"", "yes, no"),
            (#"{"name":"a","include":["x"],"dest":null}"#, true, "field 'dest'", "null"),
            ("{not json", true, "fileset file", "not valid JSON"),
            ("[[filesets]]\nname = \"a\"\ninclude = [\"/abs\"]", false, "field 'filesets[0].include[0]' = \"/abs\"", "relative"),
            ("[filesets.x]\nname = \"y\"\ninclude = [\"a\"]", false, "field 'filesets.x.name'", "leave 'name' out"),
            ("name = \"a\"\ninclude = [\"x\"]\nextra = 1", false, "field 'extra' = 1", "unknown field"),
            ("name = = 1", false, "fileset file", "not valid TOML"),
        ]
        for (text, json, field, reason) in cases {
            XCTAssertThrowsError(try FilesetSource.parseFile(text: text, source: "fileset file 'x'", json: json, baseDirectory: "/",
                                                             context: context), text) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains(field), "\(text): \(message)")
                XCTAssertTrue(message.contains(reason), "\(text): \(message)")
            }
        }
    }

    func testFileFormatIsTakenFromTheNameOrTheFirstCharacter() throws {
        let directory = try TemporaryDirectory()
        let json = directory.file("sets.json")
        try #"{"name":"a","include":["x"],"dest":"sub"}"#.write(to: json, atomically: true, encoding: .utf8)
        XCTAssertEqual(try FilesetSource.parseFile(path: json.path, context: context).first?.dest, directory.file("sub").path,
                       "a relative dest is taken from the file's directory")
        let toml = directory.file("sets")
        try "name = \"t\"\ninclude = [\"x\"]\n".write(to: toml, atomically: true, encoding: .utf8)
        XCTAssertEqual(try FilesetSource.parseFile(path: toml.path, context: context).map(\.name), ["t"])
        XCTAssertThrowsError(try FilesetSource.parseFile(path: directory.file("nope.toml").path, context: context)) {
            XCTAssertTrue("\($0)".contains("does not exist"), "\($0)")
        }
    }

    /// The fleet's slurp limit (`[fleet.execution] transfers`, default 16).
    func testTransfersLimitComesFromTheFleetConfig() throws {
        XCTAssertEqual(try FleetConfig.parse("", file: "/r/c.toml", context: context).settings.execution.transfers, 16)
        XCTAssertEqual(try FleetConfig.parse("[fleet.execution]\ntransfers = 4", file: "/r/c.toml", context: context)
            .settings.execution.transfers, 4)
        XCTAssertThrowsError(try FleetConfig.parse("[fleet.execution]\ntransfers = 0", file: "/r/c.toml", context: context)) {
            XCTAssertTrue("\($0)".contains("fleet.execution.transfers") && "\($0)".contains("between 1 and 1000"), "\($0)")
        }
    }
}
