/// Reads one TOML table of the fleet config: typed getters that record which keys were
/// asked for, and `finish()` that refuses every key nobody asked for. Each error carries
/// the file, the key's dotted path and its value.
struct TableReader {
    let file: String
    /// Dotted path of this table ("" for the document root).
    let path: String
    let entries: [String: TOMLNode]
    private var known: Set<String> = []

    init(file: String, path: String, table: [String: TOMLNode]) {
        self.file = file
        self.path = path
        self.entries = table
    }

    func keyPath(_ name: String) -> String {
        path.isEmpty ? TOMLNode.renderKey(name) : path + "." + TOMLNode.renderKey(name)
    }

    func failure(_ name: String, _ node: TOMLNode?, _ reason: String) -> FleetConfigError {
        FleetConfigError(file: file, key: keyPath(name), value: node?.rendered, reason: reason)
    }

    /// The node at `name`, marking the key as known.
    mutating func take(_ name: String) -> TOMLNode? {
        known.insert(name)
        return entries[name]
    }

    /// A non-empty, single-line string.
    mutating func string(_ name: String) throws(FleetConfigError) -> String? {
        guard let node = take(name) else { return nil }
        return try Self.text(node, failure: { failure(name, node, $0) })
    }

    mutating func integer(_ name: String, in range: ClosedRange<Int>) throws(FleetConfigError) -> Int? {
        guard let node = take(name) else { return nil }
        guard case .integer(let value) = node else { throw failure(name, node, "must be an integer, not \(node.typeName)") }
        guard range.contains(value) else {
            throw failure(name, node, "must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return value
    }

    mutating func boolean(_ name: String) throws(FleetConfigError) -> Bool? {
        guard let node = take(name) else { return nil }
        guard case .boolean(let value) = node else { throw failure(name, node, "must be true or false, not \(node.typeName)") }
        return value
    }

    /// A positive duration written as a string (`"5s"`).
    mutating func duration(_ name: String) throws(FleetConfigError) -> Duration? {
        guard let node = take(name) else { return nil }
        guard case .string(let text) = node else {
            throw failure(name, node, "must be a duration string like \"5s\" or \"10m\", not \(node.typeName)")
        }
        let milliseconds: Int64
        do { milliseconds = try FleetDuration.milliseconds(text) } catch {
            throw failure(name, node, "not a duration like 500ms, 5s, 10m or 1h30m: \(error.reason)")
        }
        guard milliseconds > 0 else { throw failure(name, node, "must be longer than zero") }
        return .milliseconds(milliseconds)
    }

    /// An array of non-empty, single-line strings; an element's key is `name[INDEX]`.
    mutating func stringArray(_ name: String) throws(FleetConfigError) -> [String]? {
        guard let node = take(name) else { return nil }
        guard case .array(let items) = node else { throw failure(name, node, "must be an array of strings, not \(node.typeName)") }
        var result: [String] = []
        for (index, item) in items.enumerated() {
            let element = FleetConfigError(file: file, key: "\(keyPath(name))[\(index)]", value: item.rendered, reason: "")
            result.append(try Self.text(item, failure: { reason in
                var error = element
                error.reason = reason
                return error
            }))
        }
        return result
    }

    /// A sub-table (`[fleet.sync]` or an inline table).
    mutating func table(_ name: String) throws(FleetConfigError) -> TableReader? {
        guard let node = take(name) else { return nil }
        guard case .table(let table) = node else { throw failure(name, node, "must be a table, not \(node.typeName)") }
        return TableReader(file: file, path: keyPath(name), table: table)
    }

    /// An array of tables (`[[fleet.members]]`); element paths are `name[INDEX]`.
    mutating func tableArray(_ name: String) throws(FleetConfigError) -> [TableReader]? {
        guard let node = take(name) else { return nil }
        guard case .array(let items) = node else { throw failure(name, node, "must be an array of tables, not \(node.typeName)") }
        var result: [TableReader] = []
        for (index, item) in items.enumerated() {
            let path = "\(keyPath(name))[\(index)]"
            guard case .table(let table) = item else {
                throw FleetConfigError(file: file, key: path, value: item.rendered, reason: "must be a table, not \(item.typeName)")
            }
            result.append(TableReader(file: file, path: path, table: table))
        }
        return result
    }

    /// Refuses the first (in sorted order) key that no getter asked for.
    func finish() throws(FleetConfigError) {
        for name in entries.keys.sorted() where !known.contains(name) {
            let allowed = known.sorted().joined(separator: ", ")
            throw failure(name, entries[name], "unknown key (known keys here: \(allowed))")
        }
    }

    private static func text(_ node: TOMLNode, failure: (String) -> FleetConfigError) throws(FleetConfigError) -> String {
        guard case .string(let value) = node else { throw failure("must be a string, not \(node.typeName)") }
        guard !value.isEmpty else { throw failure("must not be empty") }
        guard !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw failure("must not contain control characters (newlines, tabs, NUL)")
        }
        return value
    }
}
