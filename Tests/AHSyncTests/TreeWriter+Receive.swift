import AHSync
import Foundation

extension TreeWriter {
    /// Receives `manifest` from `store` the way the follower helper does with the leader's
    /// frames: the operations from what this tree holds now, each file's bytes from its object.
    func receive(_ manifest: Manifest, from store: ContentStore, ignores: IgnoreMatcher) throws -> Manifest {
        let current = try scan(ignores: ignores)
        for operation in ManifestDiff.operations(from: current, to: manifest) {
            if case .file(let entry) = operation {
                guard let fd = store.openObject(entry.sha256) else { throw CocoaError(.fileNoSuchFile) }
                let data = try FileHandle(fileDescriptor: fd, closeOnDealloc: true).readToEnd() ?? Data()
                try beginFile(entry)
                try writeFileData([UInt8](data)[...])
                try finishFile()
            } else {
                try apply(operation)
            }
        }
        try flush()
        return self.manifest
    }
}
