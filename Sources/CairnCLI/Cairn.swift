import ArgumentParser
import CairnServer
import Foundation
import Logging
import NIOCore
import NIOPosix

@main
struct Cairn: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn",
        abstract: "Cairn: an experiment tracker that speaks the MLflow REST API.",
        discussion: """
            Start a tracking server, then point unmodified MLflow code at it:

              cairn server
              export MLFLOW_TRACKING_URI=http://127.0.0.1:5000
              python train.py

            Or wrap a training command to record its code, data, environment and seeds too:

              cairn run --experiment mnist --input data/ -- python train.py --seed 1
            """,
        version: CairnVersionInfo.line,
        subcommands: [
            ServerCommand.self, RunCommand.self, ExperimentsCommand.self, RunsCommand.self, DiffCommand.self, CompareCommand.self, ABCommand.self, CheckCommand.self, RetentionCommand.self,
            ReproduceCommand.self, ReportCommand.self, SyncCommand.self, VerifyCommand.self, BackupCommand.self, RestoreCommand.self, GCCommand.self, StoreCommand.self, ExportCommand.self, ImportCommand.self, UsersCommand.self, TokensCommand.self, AuditCommand.self, VersionCommand.self,
        ])

    /// `cairn server` makes NIO's event loops Swift concurrency's global executor before anything
    /// else runs: a request's handler then runs on the event loop that read it and writes its
    /// answer there, instead of hopping to the concurrency pool and back (two thread wake-ups
    /// per request, the largest single cost of a small request in the profile). It must happen
    /// on the main thread before the first task is enqueued, hence here.
    /// `CAIRN_TASK_EXECUTOR=pool` keeps Swift's own pool (for comparison, or should a problem
    /// ever be traced to it).
    static func main() async {
        if CommandLine.arguments.dropFirst().first == ServerCommand.configuration.commandName {
            switch ProcessInfo.processInfo.environment["CAIRN_TASK_EXECUTOR"] ?? "event-loops" {
            case "event-loops": NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
            case "pool": break
            case let other:
                FileHandle.standardError.write(Data("error: CAIRN_TASK_EXECUTOR is '\(other)'. Use event-loops (the default) or pool.\n".utf8))
                Foundation.exit(1)
            }
            LoggingSystem.bootstrap { ServerLogHandler(label: $0) }
        }
        await main(nil)
    }
}
