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
            """,
        version: CairnVersionInfo.line,
        subcommands: [ServerCommand.self, VerifyCommand.self, GCCommand.self, VersionCommand.self])
}
