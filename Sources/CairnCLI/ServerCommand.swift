import ArgumentParser
import CairnCore
import CairnArtifacts
import CairnServer
import CairnStore
import Foundation
import Hummingbird
import Logging
import NIOPosix

struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run the tracking server (MLflow REST API): SQLite or PostgreSQL for metadata, a local folder or an S3 bucket for artifacts.",
        discussion: """
            With no options the server listens on http://127.0.0.1:5000 and keeps everything in ./cairn-data (the SQLite database cairn.sqlite and the artifacts/ folder). Each option can also be set by the environment variable shown; a flag wins over the variable.

            With --artifacts-destination s3://bucket/prefix the artifacts go to an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Cloudflare R2), set up as MLflow users do: credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, the region from AWS_REGION or AWS_DEFAULT_REGION (default us-east-1), and for servers other than AWS the endpoint from --s3-endpoint-url or MLFLOW_S3_ENDPOINT_URL (path-style addressing). The bucket is checked at start-up.

            Example:

              cairn server --port 5001 --data-dir ~/experiments
              export MLFLOW_TRACKING_URI=http://127.0.0.1:5001

              MLFLOW_S3_ENDPOINT_URL=http://minio:9000 cairn server --artifacts-destination s3://mlflow/artifacts
            """)

    @Option(help: ArgumentHelp("Address to listen on (env CAIRN_HOST).", valueName: "address"))
    var host: String?

    // Read as text so that a bad value is one `error:` line and exit 1 like every other
    // start-up failure, not a usage dump.
    @Option(parsing: .unconditional, help: ArgumentHelp("Port to listen on; 0 picks a free one (env CAIRN_PORT).", valueName: "port"))
    var port: String?

    @Option(name: .customLong("data-dir"), help: ArgumentHelp("Folder for the database and artifacts (env CAIRN_DATA_DIR).", valueName: "path"))
    var dataDirectory: String?

    @Option(name: .customLong("backend-store-uri"),
            help: ArgumentHelp("Database to use instead of <data-dir>/cairn.sqlite, as MLflow writes it: postgresql://user:password@host:5432/db for a team server (several replicas may share it), sqlite:///relative.db, sqlite:////absolute/path.db or a file path (env CAIRN_BACKEND_STORE_URI).", valueName: "uri"))
    var backendStoreURI: String?

    @Option(name: .customLong("read-replica-backend-store-uri"),
            help: ArgumentHelp("A PostgreSQL streaming replica for read-only requests; they may then lag behind writes by the replica's delay (env CAIRN_READ_REPLICA_BACKEND_STORE_URI).", valueName: "uri"))
    var readReplicaURI: String?

    @Option(name: .customLong("database-pool-size"), parsing: .unconditional,
            help: ArgumentHelp("PostgreSQL connections this server opens at most (env CAIRN_DATABASE_POOL_SIZE, default 10).", valueName: "n"))
    var databasePoolSize: String?

    @OptionGroup var artifactsDestination: ArtifactsDestinationOptions

    @Option(help: ArgumentHelp("What an acknowledged write survives: 'normal' a crash or kill of the server, 'full' also power loss, at some cost in write speed (env CAIRN_DURABILITY).", valueName: "normal|full"))
    var durability: String?

    @Flag(name: .customLong("webhooks-allow-private"),
          help: ArgumentHelp("Let webhooks post to loopback, private and link-local addresses and over plain http, for receivers on this machine or network; refused by default (env CAIRN_WEBHOOKS_ALLOW_PRIVATE=1)."))
    var webhooksAllowPrivate = false

    @Option(name: .customLong("stale-after"),
            help: ArgumentHelp("A RUNNING run with no metric logged for this long shows as stale in the UI, the report and `cairn runs close-stale` (e.g. 90m, 2h, 1d; env CAIRN_STALE_AFTER, default 2h).", valueName: "duration"))
    var staleAfter: String?

    @Option(name: .customLong("retention-interval"),
            help: ArgumentHelp("Apply the retention rules (experiment tag cairn.retention, see `cairn retention`) this often, e.g. 1d; off by default (env CAIRN_RETENTION_INTERVAL).", valueName: "duration"))
    var retentionInterval: String?

    @Option(name: .customLong("retention-default"),
            help: ArgumentHelp("The retention rule of experiments without a cairn.retention tag, e.g. 'keep_last=50; keep_days=90' (env CAIRN_RETENTION_DEFAULT; default: none, such experiments are left alone).", valueName: "rule"))
    var retentionDefault: String?

    @Option(name: .customLong("cost-model"),
            help: ArgumentHelp("A JSON file of compute prices, e.g. {\"currency\": \"USD\", \"cpu_hour\": 0.04, \"gpu_hour\": {\"A100\": 2.9, \"*\": 1.0}}: cost per run, per experiment and per effective run from what `cairn run` records (env CAIRN_COST_MODEL).", valueName: "file"))
    var costModel: String?

    @Flag(name: .customLong("auth"),
          help: ArgumentHelp("Require accounts: every request signs in with a user name and password or an API token (as the mlflow client sends MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN), and per-experiment and per-model permissions apply (env CAIRN_AUTH=1). Make the first administrator with `cairn users create NAME --admin` or CAIRN_ADMIN_PASSWORD."))
    var auth = false

    @Flag(name: .customLong("insecure-no-auth"),
          help: ArgumentHelp("Listen on an address other machines reach without --auth: anyone who reaches the port may then read, change and delete everything."))
    var insecureNoAuth = false

    @Option(name: .customLong("auth-default-permission"),
            help: ArgumentHelp("With --auth, what a signed-in user may do on an experiment or registered model nobody granted them anything on: READ (MLflow's default), USE, EDIT, MANAGE or NO_PERMISSIONS (env CAIRN_AUTH_DEFAULT_PERMISSION).", valueName: "level"))
    var authDefaultPermission: String?

    @Option(name: .customLong("tls-cert-file"),
            help: ArgumentHelp("Serve HTTPS with this PEM certificate (chain), so passwords and tokens never cross the network in plain text; needs --tls-key-file (env CAIRN_TLS_CERT_FILE).", valueName: "file"))
    var tlsCertFile: String?

    @Option(name: .customLong("tls-key-file"),
            help: ArgumentHelp("The PEM private key of --tls-cert-file (env CAIRN_TLS_KEY_FILE).", valueName: "file"))
    var tlsKeyFile: String?
    @Option(name: .customLong("audit-key-file"),
            help: ArgumentHelp("The key (a file of 16+ random bytes, kept outside the database) that signs the audit log's head (env CAIRN_AUDIT_KEY_FILE; default <data-dir>/audit.key, created on first start; required on PostgreSQL, the same file for every replica).", valueName: "path"))
    var auditKeyFile: String?

    @Option(name: .customLong("log-level"), help: ArgumentHelp("trace, debug, info, notice, warning or error (env CAIRN_LOG_LEVEL).", valueName: "level"))
    var logLevel: String?

    func resolvedConfiguration(environment: [String: String]) throws -> CairnServerConfiguration {
        var configuration = CairnServerConfiguration()
        if let host = host ?? environment["CAIRN_HOST"] { configuration.host = host }
        if let port {
            guard let value = Int(port) else {
                throw fail("--port '\(port)' is not a port number. Use a number between 0 and 65535.")
            }
            configuration.port = value
        } else if let text = environment["CAIRN_PORT"] {
            guard let value = Int(text) else {
                throw fail("CAIRN_PORT='\(text)' is not a port number. Set it to a number between 0 and 65535.")
            }
            configuration.port = value
        }
        guard (0...65535).contains(configuration.port) else {
            throw fail("Port \(configuration.port) is out of range. Use a number between 0 and 65535.")
        }
        if let dir = dataDirectory ?? environment["CAIRN_DATA_DIR"] { configuration.dataDirectory = dir }
        configuration.backendStoreURI = backendStoreURI ?? environment["CAIRN_BACKEND_STORE_URI"]
        configuration.auditKeyFile = auditKeyFile ?? environment["CAIRN_AUDIT_KEY_FILE"]
        configuration.readReplicaURI = readReplicaURI ?? environment["CAIRN_READ_REPLICA_BACKEND_STORE_URI"]
        if let text = databasePoolSize ?? environment["CAIRN_DATABASE_POOL_SIZE"] {
            guard let value = Int(text), (1...1000).contains(value) else {
                throw fail("--database-pool-size '\(text)' is not a connection count. Use a number from 1 to 1000.")
            }
            configuration.databasePoolSize = value
        }
        if let text = durability ?? environment["CAIRN_DURABILITY"] {
            guard let value = SQLiteTrackingStore.Durability(rawValue: text.lowercased()) else {
                throw fail("Unknown durability '\(text)'. Use 'normal' (survives a server crash) or 'full' (also survives power loss).")
            }
            configuration.durability = value
        }
        if let text = environment["CAIRN_HTTP_LOOP"] {
            guard let value = CairnServerConfiguration.RequestLoop(rawValue: text) else {
                throw fail("CAIRN_HTTP_LOOP is '\(text)'. Use cairn (the default) or hummingbird.")
            }
            configuration.requestLoop = value
        }
        configuration.s3Artifacts = try artifactsDestination.resolve(environment: environment)
        configuration.webhooksAllowPrivate = try webhooksAllowPrivate || Self.environmentFlag("CAIRN_WEBHOOKS_ALLOW_PRIVATE", environment)
        if let text = staleAfter ?? environment["CAIRN_STALE_AFTER"] {
            guard let millis = StaleRuns.parseDuration(text) else {
                throw fail("--stale-after '\(text)' is not a duration. Write it like 90m, 2h or 1d.")
            }
            configuration.staleAfterMillis = millis
        }
        if let path = costModel ?? environment["CAIRN_COST_MODEL"] {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw fail("--cost-model '\(path)' cannot be read. Give the path of a JSON file.")
            }
            do { configuration.costModel = try CostModel.parse(data) } catch {
                throw fail("--cost-model '\(path)': \(error.message)")
            }
        }
        if let text = retentionInterval ?? environment["CAIRN_RETENTION_INTERVAL"] {
            guard let millis = StaleRuns.parseDuration(text), millis >= 1000 else {
                throw fail("--retention-interval '\(text)' is not a duration of a second or more. Write it like 6h or 1d.")
            }
            configuration.retentionIntervalMillis = millis
        }
        if let text = retentionDefault ?? environment["CAIRN_RETENTION_DEFAULT"] {
            do { _ = try RetentionPolicy.parse(text) } catch {
                throw fail("--retention-default '\(text)' cannot be read: \(error.message)")
            }
            configuration.retentionDefault = text
        }
        configuration.auth.isEnabled = try auth || Self.environmentFlag("CAIRN_AUTH", environment)
        if let text = authDefaultPermission ?? environment["CAIRN_AUTH_DEFAULT_PERMISSION"] {
            do { configuration.auth.defaultPermission = try Permission.parse(text) } catch let error as CairnError {
                throw fail("--auth-default-permission: \(error.message)")
            }
        }
        configuration.allowsInsecureNoAuth = insecureNoAuth
        if let password = environment["CAIRN_ADMIN_PASSWORD"], !password.isEmpty {
            configuration.bootstrapAdmin = (environment["CAIRN_ADMIN_USER"].flatMap { $0.isEmpty ? nil : $0 } ?? "admin", password)
        }
        switch (tlsCertFile ?? environment["CAIRN_TLS_CERT_FILE"], tlsKeyFile ?? environment["CAIRN_TLS_KEY_FILE"]) {
        case (let certificate?, let key?) where !certificate.isEmpty && !key.isEmpty:
            configuration.tls = (certificate, key)
        case (nil, nil), ("", ""), ("", nil), (nil, ""):
            break
        default:
            throw fail("HTTPS needs both --tls-cert-file and --tls-key-file (or CAIRN_TLS_CERT_FILE and CAIRN_TLS_KEY_FILE).")
        }
        if !configuration.auth.isEnabled && !configuration.isLoopbackOnly && !configuration.allowsInsecureNoAuth {
            throw fail("Refusing to listen on \(configuration.host) without accounts: anyone who reaches that address could read, change and delete every run and model. Add --auth (and create an administrator with `cairn users create NAME --admin`), listen on 127.0.0.1, or add --insecure-no-auth if a proxy in front of Cairn does the signing in.")
        }
        return configuration
    }

    /// A yes/no environment variable: 1/true/yes/on or 0/false/no/off; absent or empty is no.
    static func environmentFlag(_ name: String, _ environment: [String: String]) throws -> Bool {
        guard let text = environment[name], !text.isEmpty else { return false }
        switch text.lowercased() {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw fail("\(name)='\(text)' is not a yes or no. Set it to 1 or 0.")
        }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let configuration = try resolvedConfiguration(environment: environment)
        var logger = Logger(label: "cairn")
        let levelText = logLevel ?? environment["CAIRN_LOG_LEVEL"] ?? "info"
        guard let level = Logger.Level(rawValue: levelText.lowercased()) else {
            throw fail("Unknown log level '\(levelText)'. Use trace, debug, info, notice, warning or error.")
        }
        logger.logLevel = level
        if let s3 = configuration.s3Artifacts {
            do {
                try await S3BlobStore(configuration: s3).checkAccess()
            } catch {
                throw fail(error.message)
            }
        }
        let app: any ApplicationProtocol
        do {
            // Opening a PostgreSQL store waits for its connections' answers, which arrive on the
            // event loops that also run this task (Cairn.main): the wait happens on a thread
            // of NIO's blocking pool instead.
            let logger = logger
            app = try await NIOThreadPool.singleton.runIfActive { try buildApplication(configuration: configuration, logger: logger) { port in
                let database = (try? configuration.database())
                var durabilityLine = "durability: \(configuration.durability.rawValue) (\(configuration.durability == .full ? "acknowledged writes survive power loss" : "acknowledged writes survive a server crash; --durability full for power loss"))"
                if case .postgres? = database {
                    durabilityLine = "durability: acknowledged writes are committed on PostgreSQL (its synchronous_commit decides what they survive)"
                    if let replica = configuration.readReplicaURI.flatMap({ try? PostgresLocation(uri: $0) }) {
                        durabilityLine += "\n  read replica: \(replica) (reads may lag behind writes)"
                    }
                }
                let scheme = configuration.tls == nil ? "http" : "https"
                let banner = """
                    Cairn \(cairnVersion) listening on \(scheme)://\(configuration.host):\(port)
                      database:  \(database?.description ?? "?")
                      artifacts: \(configuration.artifactsDescription)
                      \(durabilityLine)
                      accounts:  \(configuration.auth.isEnabled ? "on (sign in required; default permission \(configuration.auth.defaultPermission.rawValue))" : "off (anyone who reaches this address may do everything; --auth turns them on)")
                      point MLflow at it: export MLFLOW_TRACKING_URI=\(scheme)://\(configuration.host):\(port)

                    """
                try? FileHandle.standardOutput.write(contentsOf: Data(banner.utf8))
            } }
        } catch let error as ConfigurationError {
            throw fail(error.message)
        }
        do {
            try await app.runService()
        } catch {
            let text = "\(error)"
            if text.contains("Address already in use") || text.contains("EADDRINUSE") {
                throw fail("Port \(configuration.port) on \(configuration.host) is already in use. Stop the other server or choose another port with --port or CAIRN_PORT.")
            }
            if text.contains("Cannot assign requested address") || text.contains("EADDRNOTAVAIL") {
                throw fail("Cannot listen on \(configuration.host): no such address on this machine. Use 127.0.0.1, 0.0.0.0 or one of this machine's addresses.")
            }
            if text.contains("UnknownHost") {
                throw fail("Cannot listen on \(configuration.host): no such host name. Use 127.0.0.1, 0.0.0.0 or one of this machine's addresses or names.")
            }
            if text.contains("EACCES") || text.contains("Permission denied") {
                throw fail("Port \(configuration.port) needs privileges this user does not have. Choose a port above 1023 with --port or CAIRN_PORT.")
            }
            throw fail("The server stopped: \(text.split(whereSeparator: \.isNewline).joined(separator: " "))")
        }
    }
}

/// Prints `error: <message>` to standard error and returns the exit code to throw, so the
/// user sees one readable line instead of a usage dump.
func fail(_ message: String, code: Int32 = 1) -> ExitCode {
    try? FileHandle.standardError.write(contentsOf: Data("error: \(message)\n".utf8))
    return ExitCode(code)
}
