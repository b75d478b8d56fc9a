/// Bad input in the environment or the config file. `ah` exits 2 with `description` as
/// its one stderr line, so every message names the variable or the key and the file.
public struct ConfigError: Error, Equatable, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) { self.description = description }
}
