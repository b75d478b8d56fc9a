import AHLeader
import ArgumentParser
import Foundation
import Logging

/// `ah debug emit-events` (bench/events): a leader's journal and uplink without a fleet.
/// Appends `hostLog` events to a real `EventJournal` as fast as the journal takes them
/// (each carries `emitNs`, the wall clock at emission, so a consumer can measure emit →
/// SSE latency), pushed by the real `EventPusher` under the identity of an enrolled
/// executor's state directory. Prints one JSON line: emitted, acknowledged, seconds.
struct DebugEmitEventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emit-events",
        abstract: "Emit hostLog events through a real leader journal and uplink (bench/events).",
        shouldDisplay: false
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("An enrolled executor's --state-dir (its identity and access point).", valueName: "dir"))
    var agentStateDir: String

    @Option(help: ArgumentHelp("The journal file (SQLite; created).", valueName: "file"))
    var journal: String

    @Option(help: "The session id.")
    var session: String = UUID().uuidString.lowercased()

    @Option(help: ArgumentHelp("How long to emit.", valueName: "duration"))
    var duration: HumanDuration = HumanDuration(seconds: 30)

    @Option(help: "Bytes of text per event.")
    var textBytes: Int = 80

    @Option(help: "Stop emitting while this many events wait to be acknowledged by the access point (0: never).")
    var maxUnacknowledged: Int64 = 4_000

    @Flag(help: """
        First journal one event (so the session exists at the access point), print {"ready":true} once \
        it is acknowledged, and start emitting when a line arrives on stdin: consumers attach before \
        the timed emission instead of catching up on its history while it is measured.
        """)
    var waitForStart = false

    func run() async throws {
        let logger = CLILogging.logger("ah.debug.emit-events")
        let target = try EventUplinkTarget.load(stateDirectory: agentStateDir)
        let events = try EventJournal(path: journal, session: session, logger: logger)
        let pusher = try EventPusher(journal: events, target: target, logger: logger)
        pusher.start()
        let text = String(repeating: "x", count: max(0, textBytes))
        let clock = ContinuousClock()
        var emitted: Int64 = 0
        if waitForStart {
            events.append("hostLog", ["host": .string("bench"), "stream": .string("stdout"), "text": .string("ready"),
                                       "emitNs": .string("0")])
            emitted = 1
            let deadline = clock.now + .seconds(30)
            while pusher.acknowledged < 1 {
                guard clock.now < deadline else { throw ValidationError("the access point did not acknowledge the first event in 30 s") }
                try await Task.sleep(for: .milliseconds(5))
            }
            FileHandle.standardOutput.write(Data(#"{"ready":true}"#.utf8 + [0x0A]))
            // A blocking read of stdin, off the cooperative pool.
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                Thread.detachNewThread {
                    _ = readLine()
                    done.resume()
                }
            }
        }
        let start = clock.now
        let end = start + .seconds(duration.seconds)
        while clock.now < end {
            // Emit as fast as the pipeline takes events: an emitter that runs ahead only grows
            // the journal's backlog (and every event's latency), not the rate delivered.
            if maxUnacknowledged > 0 && emitted - pusher.acknowledged > maxUnacknowledged {
                try await Task.sleep(for: .microseconds(200))
                continue
            }
            for _ in 0..<100 {
                let now = Int64(Date().timeIntervalSince1970 * 1_000_000_000)
                events.append("hostLog", ["host": .string("bench"), "stream": .string("stdout"), "text": .string(text),
                                           "emitNs": .string(String(now))])
                emitted += 1
            }
            await Task.yield()
        }
        let emitting = (clock.now - start).seconds
        await events.flush()
        let drainStart = clock.now
        while pusher.acknowledged < pusher.journaled, clock.now - drainStart < .seconds(60) {
            try await Task.sleep(for: .milliseconds(20))
        }
        let total = (clock.now - start).seconds
        let acknowledged = pusher.acknowledged
        await pusher.stop()
        await events.close()
        print(#"{"session":"\#(session)","emitted":\#(emitted),"acknowledged":\#(acknowledged),"emitSeconds":\#(emitting),"totalSeconds":\#(total)}"#)
    }
}

private extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
