import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the executor reports about its machine: static facts in Hello, samples in heartbeats.
/// Best effort: a value that cannot be read is reported as 0 or "unknown", never an error.
public enum SystemFacts {
    public static let agentVersion = "0.4.0"

    public static var operatingSystem: (name: String, version: String) {
        #if os(Linux)
        if let release = try? String(contentsOfFile: "/etc/os-release", encoding: .utf8) {
            var fields: [String: String] = [:]
            for line in release.split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { fields[parts[0]] = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            }
            return ("linux", [fields["ID"], fields["VERSION_ID"]].compactMap { $0 }.joined(separator: " ") + " (kernel \(kernelRelease))")
        }
        return ("linux", "kernel \(kernelRelease)")
        #elseif os(macOS)
        return ("macos", ProcessInfo.processInfo.operatingSystemVersionString)
        #elseif os(Windows)
        return ("windows", ProcessInfo.processInfo.operatingSystemVersionString)
        #else
        return ("unknown", ProcessInfo.processInfo.operatingSystemVersionString)
        #endif
    }

    private static var unameFields: (machine: String, release: String) {
        var info = utsname()
        guard uname(&info) == 0 else { return ("unknown", "unknown") }
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
        }
        return (field(info.machine), field(info.release))
    }

    static var kernelRelease: String { unameFields.release }

    /// `x86_64`, `aarch64`, `arm64`, ...
    public static var architecture: String { unameFields.machine }

    public static var cpuCount: Int { ProcessInfo.processInfo.activeProcessorCount }
    public static var memoryBytes: UInt64 { ProcessInfo.processInfo.physicalMemory }
    public static var uptimeSeconds: Double { ProcessInfo.processInfo.systemUptime }

    public static var loadAverage: Double {
        var samples = [Double](repeating: 0, count: 3)
        return getloadavg(&samples, 3) >= 1 ? samples[0] : 0
    }

    /// Total minus available (Linux's MemAvailable): what a scheduler would call "in use".
    public static var memoryUsedBytes: UInt64 {
        guard let info = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return 0 }
        func kib(_ key: String) -> UInt64? {
            guard let line = info.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return nil }
            return line.split(separator: " ").dropFirst().first.flatMap { UInt64($0) }
        }
        guard let total = kib("MemTotal"), let available = kib("MemAvailable"), total >= available else { return 0 }
        return (total - available) * 1024
    }
}
