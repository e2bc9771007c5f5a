import ArgumentParser
import CairnCore
import CairnServer
import CairnServices
import Foundation

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Verify or export the audit log of every change.",
        discussion: """
            Every change to the store (experiments, runs, metrics, params, tags, datasets, artifacts, logged models, the model registry, webhooks, retention, gc, imports) appends one event in the same transaction: sequence number, time, actor, client address, request id, action, target, a SHA-256 digest of what changed and a few details. Each event carries the hash of the one before it (SHA-256), and the head of that chain is signed with HMAC-SHA256 under a key kept outside the database (<data-dir>/audit.key, or --audit-key-file).

            Examples:

              cairn audit verify --data-dir ./cairn-data
              cairn audit export --since 2026-11-01 --output audit.jsonl
            """,
        subcommands: [AuditVerifyCommand.self, AuditExportCommand.self])
}

struct AuditVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Walk the audit chain and name the first event that was edited, deleted, reordered or forged.",
        discussion: """
            Recomputes every event's hash from its content and the hash before it, checks that the numbers run 1, 2, 3… without a gap, that the signed head names the last event, and that the head's HMAC matches the key. Exits 0 when the log is intact, 1 at the first break (each one found is listed, the first first). It runs while the server is up.

            Example:

              cairn audit verify --data-dir ./cairn-data
              cairn audit verify --backend-store-uri postgresql://cairn@db/cairn --audit-key-file /etc/cairn/audit.key
            """)

    @OptionGroup var store: StoreOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let services = try store.openServices()
        let result = try await services.audit.verify()
        let signature: String
        switch result.headSignatureValid {
        case true?: signature = "matches"
        case false?: signature = "DOES NOT MATCH"
        case nil: signature = "not checked (no audit key given: --audit-key-file)"
        }
        if json {
            printJSON([
                "events": result.events, "last_seq": result.lastSeq, "last_hash": result.lastHash,
                "head_signature_valid": result.headSignatureValid as Any? ?? NSNull(),
                "problems": result.problems.map(\.description),
                "first_broken_seq": result.problems.first.map(Self.seq) as Any? ?? NSNull(),
                "intact": result.isIntact,
            ])
        } else {
            for problem in result.problems { print("BROKEN  \(problem)") }
            let summary = "\(result.events) events, last \(result.lastSeq) (hash \(result.lastHash.prefix(16))…); head HMAC \(signature)"
            if result.isIntact {
                print("OK: \(summary); the chain is intact.")
            } else {
                print("FAILED: \(summary). The audit log was changed outside Cairn: the first break is \(result.problems.first.map { "\($0)" } ?? "the head's signature").")
            }
        }
        if !result.isIntact { throw ExitCode(1) }
    }

    /// The event a problem names.
    static func seq(_ problem: AuditVerification.Problem) -> Int64 {
        switch problem {
        case .edited(let seq): return seq
        case .broken(let seq, let expected): return min(seq, expected)
        case .headMismatch(let head, let last): return min(head, last) + 1
        case .headSignature: return 0
        }
    }
}

struct AuditExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the audit log as JSON lines, oldest first.",
        discussion: """
            One JSON object per line: seq, time (ms), actor, authenticated, client_address, request_id, action, target, digest, details, previous_hash, hash. --since takes an event number (events after it) or a time (events at or after it).

            Example:

              cairn audit export --since 2026-11-01T00:00:00Z --output audit.jsonl
              cairn audit export --since 1200 | jq -c 'select(.action == "run.delete")'
            """)

    @OptionGroup var store: StoreOptions
    @Option(help: ArgumentHelp("Only events after this number, or at or after this time (2026-11-26, 2026-11-26T10:00:00Z).", valueName: "seq|time"))
    var since: String?
    @Option(help: ArgumentHelp("Write to this file instead of standard output.", valueName: "file"))
    var output: String?

    func run() async throws {
        var query = AuditQuery(newestFirst: false)
        if let since {
            do {
                let (seq, time) = try AuditService.parseSince(since)
                query.afterSeq = seq
                query.sinceTime = time
            } catch let error as CairnError {
                throw fail(error.message)
            }
        }
        let services = try store.openServices()
        let handle: FileHandle
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: nil) else {
                throw fail("Cannot create '\(output)'. Check that its folder exists and is writable.")
            }
            handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        } else {
            handle = FileHandle.standardOutput
        }
        let count = try await services.audit.export(query) { events in
            var writer = JSONWriter(capacity: events.count * 400)
            for event in events {
                writer.value(event.json)
                writer.raw("\n")
            }
            try handle.write(contentsOf: writer.bytes)
        }
        if let output {
            try handle.close()
            FileHandle.standardError.write(Data("Wrote \(count) events to \(output).\n".utf8))
        }
    }
}
