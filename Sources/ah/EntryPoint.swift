import ArgumentParser
import Foundation

@main
enum EntryPoint {
    static func main() async {
        do {
            var command = try AH.parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as CLIError {
            FileHandle.standardError.write(Data("ah: \(error.message)\n".utf8))
            exit(error.exitCode)
        } catch {
            let code = AH.exitCode(for: error)
            if code == .validationFailure {
                // cli.md: bad usage is exit 2 with one line naming the bad value.
                let message = AH.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid usage"
                FileHandle.standardError.write(Data("ah: \(message)\n".utf8))
                exit(2)
            }
            AH.exit(withError: error)
        }
    }
}
