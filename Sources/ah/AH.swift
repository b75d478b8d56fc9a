import AHExecutor
import ArgumentParser

/// The root command. Subcommands are thin: they parse flags, build library configuration,
/// call into AH* modules and map outcomes to the exit codes of shared/cli.md
/// (0 ok, 1 the work failed, 2 bad usage or input, 3 not reachable / not authorized).
struct AH: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ah",
        abstract: "Control plane for multi-OS testing: access points, executors, leaders and SSH tunnels over QUIC.",
        version: SystemFacts.agentVersion,
        subcommands: [ServeCommand.self, AgentCommand.self, ConnectCommand.self, SSHConfigCommand.self, CACommand.self, TokenCommand.self,
                      UserCommand.self, ExecutorsCommand.self, DebugCommand.self]
    )
}

struct DebugCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "debug",
        abstract: "Transport and identity debugging tools.",
        subcommands: [
            DebugQUICEchoServerCommand.self,
            DebugQUICEchoCommand.self,
            DebugQUICDownloadServerCommand.self,
            DebugQUICDownloadCommand.self,
            DebugDevCertsCommand.self,
            DebugEnrollLoadCommand.self,
            DebugRegistryLoadCommand.self,
            DebugEmitEventsCommand.self,
        ]
    )
}
