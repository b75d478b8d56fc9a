import AHControl
import AHQUIC
import AHStore
import Foundation
import Logging
import NIOCore

/// Sets up the access point's end of a control stream and connects its messages to the
/// registry (live state) and the store (facts that outlive the connection).
struct ControlContext: Sendable {
    let registry: ExecutorRegistry
    let store: StateStore
    let configHash: String
    let helloDeadline: TimeAmount
    let logger: Logger

    func install(on pipeline: ChannelPipeline.SynchronousOperations, stream: QUICStreamChannel, name: String) throws {
        let connection = stream.connection
        let registry = self.registry
        let store = self.store
        let logger = self.logger
        var handle: ControlHandle?
        let handler = AccessPointControlHandler(
            name: name, configHash: configHash,
            callbacks: .init(
                hello: { hello in
                    let now = Date()
                    if let handle { registry.hello(name, connection, hello, control: handle, at: now) }
                    logger.info("executor said hello", metadata: [
                        "name": "\(name)", "os": "\(hello.os) \(hello.osVersion)", "arch": "\(hello.arch)",
                        "agentVersion": "\(hello.agentVersion)", "sshEnabled": "\(hello.sshEnabled)",
                        "hostKeys": "\(hello.sshHostKeys.count)", "heartbeatMs": "\(hello.heartbeatIntervalMillis)"])
                    if hello.sshEnabled && hello.sshHostKeys.isEmpty {
                        logger.warning("executor reported no ssh host keys; `ah ssh-config` cannot pin its sshd", metadata: ["name": "\(name)"])
                    }
                    store.recordFacts(name: name, facts: ExecutorFactsCodec.facts(of: hello), now: now)
                },
                heartbeat: { beat in registry.heartbeat(name, connection, beat, at: Date()) },
                goodbye: { goodbye in
                    logger.info("executor said goodbye", metadata: ["name": "\(name)", "reason": "\(goodbye.reason.prefix(200))"])
                    registry.leaving(name, connection, reason: String(goodbye.reason.prefix(200)))
                },
                closed: {}),
            logger: logger)
        handle = ControlHandle(handler, eventLoop: stream.eventLoop)
        try pipeline.addHandler(ByteToMessageHandler(FrameDecoder(decoding: ExecutorControlMessage.self)))
        try pipeline.addHandler(handler)
    }
}
