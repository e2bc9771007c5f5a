import ArgumentParser
import Foundation

@main
struct CairnLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn-load",
        abstract: "A compiled load generator for MLflow-REST tracking servers (Cairn's bench/).",
        discussion: """
            Speaks the MLflow REST calls of ../shared/bench/trackbench.py over raw SwiftNIO HTTP/1.1 \
            keep-alive connections, with fixed request counts (never a duration), latency percentiles \
            (HdrHistogram) and the server's CPU per request from /proc.

            Examples:
              cairn-load run --url http://127.0.0.1:5000 --server-pid 1234 \\
                --scenarios s1,s3,writers --json out.json
              cairn-load noop-server --port 5001
            """,
        subcommands: [Run.self, NoopServerCommand.self],
        defaultSubcommand: Run.self)
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Runs scenarios against a server and reports rates, latencies and server cost.",
        discussion: """
            Scenarios (trackbench's bodies):
              s1       runs/create: --requests runs over --connections
              s2       1,000-point runs/log-batch (10 keys x 100 steps):
                       --batches requests, a run per connection
              s3       one-point runs/log-metric: --requests requests
              s4       --history-points points, then --reads whole
                       get-history reads (page tokens followed) and
                       get-history-bulk-interval reads (320, 2500)
              s5       --search-runs runs populated, then --reads filtered
                       (max 100) and unfiltered (max 1000) searches
              writers  --writers connections at once: each creates its run,
                       then sends --writer-requests 10-metric log-batches,
                       back to back or one per --writer-interval-ms
            Each phase is bounded by --max-seconds: past it, the busy
            connections are closed and their remaining requests count as
            transport errors.

            Example:
              cairn-load run --url http://127.0.0.1:5000 --server-pid 1234 \\
                --scenarios s1,s2,s3 --connections 4 --json out.json
            """)

    @Option(help: "The server's base URL (loopback), e.g. http://127.0.0.1:5000.")
    var url: String

    @Option(help: "Comma-separated scenarios: s1, s2, s3, s4, s5, writers, or all.")
    var scenarios = "s1,s2,s3"

    @Option(help: "Concurrent keep-alive connections for s1, s2, s3 and s5's population.")
    var connections = 4

    @Option(help: "Operations for s1 (runs) and s3 (log-metric requests), shared by the connections.")
    var requests = 2000

    @Option(help: "1,000-point log-batch requests for s2, shared by the connections.")
    var batches = 200

    @Option(help: "Connections of the writers scenario, all logging at once.")
    var writers = 1000

    @Option(help: "log-batch requests per writer (writers scenario).")
    var writerRequests = 20

    @Option(help: """
        Milliseconds between the starts of a writer's requests, the writers' schedules spread over \
        one interval; 0 sends them back to back, so with many writers p99 is mostly queueing \
        (1,000 writers need 10,000 requests/s for 100 ms).
        """)
    var writerIntervalMs = 0

    @Option(help: "Points of s4's series.")
    var historyPoints = 10_000

    @Option(help: "Timed reads of each kind in s4 and s5 (one connection).")
    var reads = 20

    @Option(help: "Runs populated for s5.")
    var searchRuns = 1000

    @Option(help: "Event-loop threads of the load generator.")
    var threads = 1

    @Option(help: "The server's pid: its process tree's CPU (utime + stime) and resident memory are read from /proc.")
    var serverPid: Int32?

    @Option(help: "Time bound of each phase, in seconds (hang protection, never the measure).")
    var maxSeconds = 600.0

    @Option(help: "Seed of the metric values.")
    var seed: UInt64 = 1234

    @Option(help: "Free-text name of the server under test, copied into the JSON.")
    var label = ""

    @Option(help: "Write the figures as JSON to this file.")
    var json: String?

    static let allScenarios = ["s1", "s2", "s3", "s4", "s5", "writers"]

    func validate() throws {
        for name in scenarioList where !Self.allScenarios.contains(name) {
            throw ValidationError("unknown scenario '\(name)'; known: \(Self.allScenarios.joined(separator: ", ")), all")
        }
        guard connections > 0, writers > 0, threads > 0, requests >= 0, batches >= 0, writerRequests >= 0, writerIntervalMs >= 0, reads >= 0 else {
            throw ValidationError("--connections, --writers and --threads must be positive, counts not negative")
        }
        if let serverPid, !FileManager.default.fileExists(atPath: "/proc/\(serverPid)/stat") {
            throw ValidationError("--server-pid \(serverPid): no such process")
        }
        _ = try endpoint()
    }

    var scenarioList: [String] {
        scenarios == "all" ? Self.allScenarios : scenarios.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    func endpoint() throws -> (host: String, port: Int) {
        guard let parts = URLComponents(string: url), parts.scheme == "http", let host = parts.host else {
            throw ValidationError("--url must be http://HOST:PORT (got '\(url)')")
        }
        return (host, parts.port ?? 80)
    }

    func run() async throws {
        let (host, port) = try endpoint()
        let plan = LoadPlan(scenarios: scenarioList, connections: connections, requests: requests, batches: batches, writers: writers,
                            writerRequests: writerRequests, writerIntervalMilliseconds: writerIntervalMs, historyPoints: historyPoints, reads: reads, searchRuns: searchRuns,
                            maxSeconds: maxSeconds, seed: seed)
        let client = LoadClient(host: host, port: port, threads: threads)
        let server = serverPid.map { ProcessTree(root: $0) }
        var load = LoadRun(client: client, plan: plan, server: server)
        let started = Date()
        do {
            try await load.runAll()
        } catch {
            await client.close()
            throw error
        }
        await client.close()
        print("")
        print(Report.table(load.records))
        let errors = load.records.reduce(0) { $0 + $1.failed }
        print(errors == 0 ? "errors / rejected requests: none" : "errors / rejected requests: \(errors)")
        for record in load.records {
            for error in record.errors {
                print("  \(record.scenario) \(record.name) \(error.endpoint) [\(error.status)] x\(error.count): \(error.sample.prefix(160))")
            }
        }
        if let json {
            let document = LoadDocument(
                meta: .init(tool: "cairn-load", url: url, label: label, scenarios: plan.scenarios, threads: threads,
                            started_utc: ISO8601DateFormatter().string(from: started),
                            total_wall_s: LatencyReport.rounded(Date().timeIntervalSince(started)),
                            server_pid: serverPid, server_root_peak_rss_mib: server.map { (Double($0.memory().rootPeakKiB) / 1024 * 10).rounded() / 10 },
                            cpus: ProcessInfo.processInfo.activeProcessorCount),
                scenarios: load.records, aborted: load.aborted)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(document).write(to: URL(fileURLWithPath: json))
            print("wrote \(json)")
        }
        if !load.aborted.isEmpty { throw ExitCode(2) }
    }
}

/// The JSON of `cairn-load run --json`.
struct LoadDocument: Codable {
    struct Meta: Codable {
        var tool: String
        var url: String
        var label: String
        var scenarios: [String]
        var threads: Int
        var started_utc: String
        var total_wall_s: Double
        var server_pid: Int32?
        /// VmHWM of the server's root process at the end: its resident peak over its whole life.
        var server_root_peak_rss_mib: Double?
        var cpus: Int
    }
    var meta: Meta
    var scenarios: [PhaseRecord]
    var aborted: [String: String]
}

struct NoopServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "noop-server",
        abstract: "Answers the MLflow calls of the load tools at once and stores nothing (the measuring ceiling).",
        discussion: """
            The compiled twin of bench/noop_server.py: experiments/create, runs/create and every other \
            call answered at once. Run it in the background and point trackbench or cairn-load at it.

            Example:
              cairn-load noop-server --port 5001
            """)

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on.")
    var port: Int

    @Option(help: "Event-loop threads.")
    var threads = 1

    func run() async throws {
        try await NoopServer.run(host: host, port: port, threads: threads)
    }
}
