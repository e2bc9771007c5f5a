import ArgumentParser

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
}
