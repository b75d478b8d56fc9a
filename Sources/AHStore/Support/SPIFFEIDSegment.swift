import AHSPIFFE

/// Executor names become the last segment of `spiffe://TD/ah/agent/NAME`, so the store holds
/// them to the same grammar as the identity layer.
enum SPIFFEIDSegment {
    static func isValid(_ name: String) -> Bool {
        SPIFFEID.isValidPathSegment(name)
    }
}
