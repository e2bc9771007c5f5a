import CairnCore
import CairnArtifacts
import CairnServices
import CairnStore
import Foundation

/// Where the server listens and keeps its data. Filled from flags, then `CAIRN_*`
/// environment variables, then these defaults (see `cairn server --help`).
public struct CairnServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Holds the SQLite database and the artifact folder unless overridden.
    public var dataDirectory: String
    /// The database as MLflow users write it: `postgresql://user:password@host:port/db`
    /// (`postgres://` too), an SQLAlchemy-style SQLite URI (`sqlite:///relative.db`,
    /// `sqlite:////absolute/path.db`) or a plain path; nil means `<dataDirectory>/cairn.sqlite`.
    public var backendStoreURI: String?
    /// What an acknowledged write survives: a server crash (`normal`, the default) or also
    /// power loss (`full`). SQLite only; on PostgreSQL the server's own settings decide.
    public var durability: SQLiteTrackingStore.Durability
    /// A PostgreSQL streaming replica that read-only requests may use (MLflow's
    /// `--read-replica-backend-store-uri`); nil reads from the primary.
    public var readReplicaURI: String?
    /// How many connections (and threads that wait on them) a replica opens to PostgreSQL at most.
    public var databasePoolSize: Int
    /// The bucket for artifacts (`--artifacts-destination s3://bucket/prefix`); nil keeps them
    /// in `<dataDirectory>/artifacts`.
    public var s3Artifacts: S3Configuration?
    /// Lets webhooks target loopback, private and link-local addresses (and plain `http`):
    /// for receivers on the same machine or network. Off by default (the SSRF guard).
    public var webhooksAllowPrivate = false
    /// A `RUNNING` run with no activity for this long is stale (`--stale-after`, default 2 h).
    public var staleAfterMillis = StaleRuns.defaultAfterMillis
    /// Apply the retention rules this often (`--retention-interval`); nil: never by itself.
    public var retentionIntervalMillis: Int64?
    /// The rule of experiments without a `cairn.retention` tag (`--retention-default`).
    public var retentionDefault: String?
    /// What compute costs (`--cost-model FILE`); nil: no cost figures.
    public var costModel: CostModel?
    /// Accounts and permissions (`--auth`); off by default, as on a laptop.
    public var auth = AuthSettings(isEnabled: false)
    /// Serve without accounts on an address other hosts reach (`--insecure-no-auth`).
    public var allowsInsecureNoAuth = false
    /// The first administrator, made at start when auth is on and the store has none
    /// (`CAIRN_ADMIN_USER`, default `admin`, with `CAIRN_ADMIN_PASSWORD`).
    public var bootstrapAdmin: (name: String, password: String)?
    /// bcrypt's cost for new password hashes (12; tests may lower it).
    public var bcryptCost: UInt8 = 12
    /// Serve HTTPS with this PEM certificate chain and private key (`--tls-cert-file`,
    /// `--tls-key-file`); nil serves plain HTTP.
    public var tls: (certificateFile: String, keyFile: String)?

    /// Which loop answers a connection's requests (`CAIRN_HTTP_LOOP`): Cairn's own channel
    /// handler (`cairn`, the default; HTTPConnection.swift) or Hummingbird's `NIOAsyncChannel`
    /// loop (`hummingbird`), kept to compare the two and as a fallback.
    public enum RequestLoop: String, Sendable {
        case cairn, hummingbird
    }
    public var requestLoop = RequestLoop.cairn

    /// True when `host` is reachable only from this machine.
    public var isLoopbackOnly: Bool {
        ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host.lowercased()) || host.hasPrefix("127.")
    }
    /// The key that signs the audit chain's head (`--audit-key-file`, `CAIRN_AUDIT_KEY_FILE`);
    /// nil: `<dataDirectory>/audit.key`, created on first start (SQLite only: on PostgreSQL
    /// every replica must be given the same file).
    public var auditKeyFile: String?
    /// False for CLI commands: on PostgreSQL without a key file they leave the head unsigned
    /// (the next write of a server signs it again; `cairn audit verify` says so meanwhile).
    public var auditKeyRequired = true

    public init(host: String = "127.0.0.1", port: Int = 5000, dataDirectory: String = "./cairn-data", backendStoreURI: String? = nil,
                durability: SQLiteTrackingStore.Durability = .normal, readReplicaURI: String? = nil, databasePoolSize: Int = 10) {
        self.host = host
        self.port = port
        self.dataDirectory = dataDirectory
        self.backendStoreURI = backendStoreURI
        self.durability = durability
        self.readReplicaURI = readReplicaURI
        self.databasePoolSize = databasePoolSize
    }

    /// Which database the configuration names.
    public enum Database: Sendable, CustomStringConvertible {
        case sqlite(path: String)
        case postgres(PostgresLocation)

        /// For messages and the start-up banner; never shows a password.
        public var description: String {
            switch self {
            case .sqlite(let path): return path
            case .postgres(let location): return location.description
            }
        }
    }

    public func database() throws -> Database {
        if let uri = backendStoreURI, PostgresLocation.isPostgres(uri) {
            do {
                return .postgres(try PostgresLocation(uri: uri))
            } catch let error as CairnError {
                throw ConfigurationError(message: error.message)
            }
        }
        return .sqlite(path: try databasePath())
    }

    /// The SQLite file the configuration points at.
    public func databasePath() throws -> String {
        guard let uri = backendStoreURI, !uri.isEmpty else {
            return (dataDirectory as NSString).appendingPathComponent("cairn.sqlite")
        }
        if uri.hasPrefix("sqlite:///") {
            let path = String(uri.dropFirst("sqlite:///".count))
            if !path.isEmpty { return path }
        } else if !uri.contains(":") {
            return uri
        }
        throw ConfigurationError(message: "Unsupported backend store URI '\(PostgresLocation.redacted(uri))'. Use postgresql://USER:PASSWORD@HOST:PORT/DATABASE, sqlite:///relative/file.sqlite, sqlite:////absolute/file.sqlite or a file path.")
    }

    /// Where artifacts are, for messages: the folder, or `s3://bucket/prefix at <endpoint>`.
    public var artifactsDescription: String {
        s3Artifacts.map { "\($0) at \($0.endpointDescription)" } ?? artifactDirectory
    }

    /// The audit key: the file given, or on SQLite `<dataDirectory>/audit.key`, created (32
    /// random bytes, mode 0600) when missing. PostgreSQL refuses to go without one: replicas
    /// that each made their own key would sign one chain with different keys.
    public func auditKey() throws -> AuditKey? {
        let isPostgres = backendStoreURI.map(PostgresLocation.isPostgres) ?? false
        guard let path = auditKeyFile.flatMap({ $0.isEmpty ? nil : $0 }) else {
            if isPostgres {
                if !auditKeyRequired { return nil }
                throw ConfigurationError(message: "A PostgreSQL store needs --audit-key-file (or CAIRN_AUDIT_KEY_FILE): every replica signs the one audit chain and must use the same key, kept outside the database. Create one once (`head -c 32 /dev/urandom > audit.key && chmod 600 audit.key`) and give that file to every replica and to `cairn audit verify`.")
            }
            let path = (dataDirectory as NSString).appendingPathComponent("audit.key")
            do {
                return try AuditKey.load(path: path, create: true)
            } catch let error as CairnError {
                throw ConfigurationError(message: error.message)
            }
        }
        do {
            return try AuditKey.load(path: path, create: false)
        } catch let error as CairnError {
            throw ConfigurationError(message: error.message)
        }
    }

    public var artifactDirectory: String {
        (dataDirectory as NSString).appendingPathComponent("artifacts")
    }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }

    public init(message: String) {
        self.message = message
    }
}
