import ArgumentParser
import CairnServer

enum CairnVersionInfo {
    static var line: String { "cairn \(cairnVersion) (MLflow REST API \(mlflowCompatibleVersion))" }
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print Cairn's version and the MLflow API version it serves.",
        discussion: "Example:\n\n  cairn version")

    func run() {
        print(CairnVersionInfo.line)
    }
}
