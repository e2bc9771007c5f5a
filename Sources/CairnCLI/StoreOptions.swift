import ArgumentParser
import CairnArtifacts
import CairnServer
import CairnServices
import Foundation

/// Where a CLI command finds the server's data: the same flags and variables as `cairn server`.
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: ArgumentHelp("Folder with the database and artifacts (env CAIRN_DATA_DIR, default ./cairn-data).", valueName: "path"))
    var dataDirectory: String?

    @Option(name: .customLong("backend-store-uri"), help: ArgumentHelp("Database, if not <data-dir>/cairn.sqlite: a SQLite path or URI, or postgresql://… (env CAIRN_BACKEND_STORE_URI).", valueName: "uri"))
    var backendStoreURI: String?

    func configuration() -> CairnServerConfiguration {
        let environment = ProcessInfo.processInfo.environment
        var configuration = CairnServerConfiguration()
        if let dir = dataDirectory ?? environment["CAIRN_DATA_DIR"] { configuration.dataDirectory = dir }
        configuration.backendStoreURI = backendStoreURI ?? environment["CAIRN_BACKEND_STORE_URI"]
        return configuration
    }

    /// The artifact service over the existing data folder; refuses to create a new one, so a
    /// mistyped path is reported instead of "verified".
    func openArtifactService() throws -> ArtifactService {
        try openServices().artifacts
    }

    /// The services over the existing data folder; refuses to create a new one.
    func openServices() throws -> CairnServiceSet {
        let configuration = configuration()
        if case .sqlite(let database)? = try? configuration.database(), !FileManager.default.fileExists(atPath: database) {
            throw fail("No Cairn database at '\(database)'. Point --data-dir (or CAIRN_DATA_DIR) at the folder `cairn server` uses.")
        }
        do {
            return try CairnServer.openServices(configuration)
        } catch let error as ConfigurationError {
            throw fail(error.message)
        }
    }
}

func formatBytes(_ bytes: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024, unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}

func printJSON(_ object: Any) {
    if let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) {
        FileHandle.standardOutput.write(data)
        FileHandle.standardOutput.write(Data("\n".utf8))
    }
}
