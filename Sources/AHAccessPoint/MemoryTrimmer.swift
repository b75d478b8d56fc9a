#if canImport(Glibc)
/// glibc's malloc_trim(3), which the Glibc module does not export.
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
#endif

/// Gives memory freed after a burst (a reconnect storm: thousands of TLS handshakes at once)
/// back to the operating system. glibc keeps freed heap in its arenas; without a trim the
/// access point's RSS stays at the burst's peak although the live connections need much less.
enum MemoryTrimmer {
    static let interval: UInt64 = 15_000_000_000

    static func run() async {
        #if canImport(Glibc)
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: interval)
            if Task.isCancelled { return }
            _ = glibcMallocTrim(0)
        }
        #endif
    }
}
