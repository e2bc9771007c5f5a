import Foundation
import Testing

/// `cairn server` refuses to start with one line saying what is wrong and exit status 1,
/// never a crash or a Swift fatal error.
@Suite("cairn server start-up failures")
struct ServerCommandTests {
    @Test("Each start-up failure is one 'error:' line naming the problem, and exit status 1")
    func startUpFailures() throws {
        let folder = try TempFolder("cairn-start")
        try folder.write("plain-file", "x")
        try folder.write("garbage.sqlite", String(repeating: "not a database ", count: 20))
        let mlflowDatabase = try shell("python3 -c \"import sqlite3; c = sqlite3.connect('mlflow.db'); c.execute('CREATE TABLE experiments (x)'); c.commit()\"", in: folder.path)
        #expect(mlflowDatabase.status == 0, "\(mlflowDatabase.stderr)")

        // A database a newer Cairn has migrated: this one's schema plus a migration it does not know.
        let newer = try ServerProcess(data: TempFolder("cairn-start-newer"))
        newer.stop()
        let marked = try shell("python3 -c \"import sqlite3; c = sqlite3.connect('cairn.sqlite'); c.execute(\\\"INSERT INTO grdb_migrations VALUES ('9999_future')\\\"); c.commit()\"", in: newer.data.path)
        #expect(marked.status == 0, "\(marked.stderr)")

        let running = try ServerProcess()
        let data = folder.path + "/data"
        let cases: [(arguments: [String], says: String)] = [
            (["--port", "abc"], "--port 'abc' is not a port number"),
            (["--port", "-1"], "Port -1 is out of range"),
            (["--port", "70000"], "Port 70000 is out of range"),
            (["--port", String(running.port)], "Port \(running.port) on 127.0.0.1 is already in use"),
            (["--host", "no-such-host.invalid", "--port", "0"], "Cannot listen on no-such-host.invalid"),
            (["--host", "192.0.2.1", "--port", "0"], "Cannot listen on 192.0.2.1: no such address"),
            (["--data-dir", folder.path + "/plain-file/data"], "'\(folder.path)/plain-file' is a file, not a folder"),
            (["--backend-store-uri", "mysql://u:secret@db/cairn"], "Unsupported backend store URI 'mysql://u:***@db/cairn'"),
            (["--backend-store-uri", "postgresql://u:secret@127.0.0.1:1/cairn"], "Cannot connect to PostgreSQL at 127.0.0.1:1 (database cairn)"),
            (["--backend-store-uri", "postgresql://u:secret@/cairn"], "The PostgreSQL URI 'postgresql://u:***@/cairn' names no host"),
            (["--backend-store-uri", "postgresql://127.0.0.1:1/cairn", "--database-pool-size", "0"], "--database-pool-size '0' is not a connection count"),
            (["--backend-store-uri", folder.path + "/garbage.sqlite"], "SQLite error 26: file is not a database"),
            (["--backend-store-uri", folder.path], "Cannot open the database '\(folder.path)'"),
            (["--backend-store-uri", folder.path + "/mlflow.db"], "It is not a Cairn database: it holds tables (experiments)"),
            (["--data-dir", newer.data.path], "It was written by a newer version of Cairn (schema 9999_future"),
            (["--durability", "maybe"], "Unknown durability 'maybe'"),
            (["--log-level", "loud"], "Unknown log level 'loud'"),
        ]
        for (arguments, says) in cases {
            let defaults = arguments.contains("--data-dir") ? [] : ["--data-dir", data]
            let result = try cairn(["server"] + defaults + arguments)
            #expect(result.status == 1, "\(arguments): \(result.stderr)")
            #expect(result.stderr.hasPrefix("error: \(says)") || result.stderr.contains(says), "\(arguments): \(result.stderr)")
            #expect(result.stderr.hasPrefix("error: ") && result.stderr.hasSuffix("\n") && result.stderr.dropLast().allSatisfy { !$0.isNewline },
                    "\(arguments) should print one error line: \(result.stderr)")
            #expect(result.stdout.isEmpty, "\(arguments): \(result.stdout)")
            #expect(!result.stderr.contains("secret"), "a password was shown: \(result.stderr)")
        }
    }
}
