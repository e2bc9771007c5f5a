import CairnCore
import CairnStore
import Foundation
import Logging
import NIOPosix
import PostgresNIO
import Synchronization

/// The two store backends the conformance suite runs every store test against:
/// `@Test(arguments: StoreBackend.allCases) func x(backend: StoreBackend)` with `withStore(backend)`.
public enum StoreBackend: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite
    case postgres

    public var description: String { rawValue }
}

/// Runs `body` with a new, empty store of `backend`: a SQLite file in a temporary folder, or a
/// new database on the test PostgreSQL server (`PostgresTestServer`); removed afterwards.
public func withStore<T>(_ backend: StoreBackend, _ body: (SQLStore) async throws -> T) async throws -> T {
    switch backend {
    case .sqlite:
        return try await withSQLiteStore { try await body($0) }
    case .postgres:
        return try await withPostgresStore { try await body($0) }
    }
}

/// Runs `body` with a store on a new database of the test PostgreSQL server, dropped afterwards.
public func withPostgresStore<T>(poolSize: Int = 4, _ body: (PostgresTrackingStore) async throws -> T) async throws -> T {
    let location = try await PostgresTestServer.shared.createDatabase()
    let store = try PostgresTrackingStore(location: location, poolSize: poolSize)
    do {
        let value = try await body(store)
        store.shutdown()
        try await PostgresTestServer.shared.dropDatabase(location.database)
        return value
    } catch {
        store.shutdown()
        try? await PostgresTestServer.shared.dropDatabase(location.database)
        throw error
    }
}

/// The PostgreSQL server the tests use: the one `CAIRN_TEST_POSTGRES_URL` names (scripts/test
/// starts a throwaway cluster and sets it), or else a throwaway cluster this process starts on
/// a free loopback port with Debian's `postgresql` binaries and stops when it exits.
public final class PostgresTestServer: Sendable {
    public static let shared = PostgresTestServer()

    private let state = Mutex<Result<PostgresLocation, CairnError>?>(nil)
    private let counter = Atomic<Int>(0)

    /// The server's maintenance database (`postgres`), where test databases are created.
    public func adminLocation() throws -> PostgresLocation {
        try state.withLock { state in
            if let state { return try state.get() }
            let result: Result<PostgresLocation, CairnError>
            do {
                result = .success(try Self.locate())
            } catch let error as CairnError {
                result = .failure(error)
            } catch {
                result = .failure(CairnError(.internalError, "\(error)"))
            }
            state = result
            return try result.get()
        }
    }

    /// A new empty database; its location.
    public func createDatabase() async throws -> PostgresLocation {
        var location = try adminLocation()
        let name = "cairn_test_\(getpid())_\(counter.add(1, ordering: .relaxed).newValue)_\(UInt32.random(in: 0...UInt32.max))"
        do {
            try await admin(location, "CREATE DATABASE \(name)")
        } catch {
            // Most often a stale CAIRN_TEST_POSTGRES_URL: the services it came from were stopped.
            let origin = ProcessInfo.processInfo.environment["CAIRN_TEST_POSTGRES_URL"].map { _ in
                " named by CAIRN_TEST_POSTGRES_URL; unset it to let the tests start their own cluster, or start the server it names (scripts/test-services start)"
            } ?? ""
            throw CairnError(.internalError, "Cannot create a test database on the PostgreSQL server at \(location.host):\(location.port)\(origin): \(String(reflecting: error))")
        }
        location.database = name
        return location
    }

    public func dropDatabase(_ name: String) async throws {
        try await admin(try adminLocation(), "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    /// Runs one statement (no parameters) in the database at `location`: for
    /// tests that make a database of another program's schema (an MLflow SQL store).
    public func execute(_ sql: String, in location: PostgresLocation) async throws {
        try await admin(location, sql)
    }

    private func admin(_ location: PostgresLocation, _ sql: String) async throws {
        var configuration = PostgresConnection.Configuration(host: location.host, port: location.port, username: location.username,
                                                             password: location.password, database: location.database, tls: .disable)
        configuration.options.connectTimeout = .seconds(30)
        let connection = try await PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration,
                                                              id: 0, logger: Logger(label: "cairn.test.postgres"))
        defer { Task { try? await connection.close() } }
        _ = try await connection.simpleQuery(sql).get()
    }

    private static func locate() throws -> PostgresLocation {
        if let url = ProcessInfo.processInfo.environment["CAIRN_TEST_POSTGRES_URL"], !url.isEmpty {
            var location = try PostgresLocation(uri: url)
            location.database = "postgres"
            return location
        }
        return try startThrowawayCluster()
    }

    /// A throwaway cluster for the whole test process, stopped and removed at exit.
    private static func startThrowawayCluster() throws -> PostgresLocation {
        let cluster = try ThrowawayPostgresCluster()
        processCluster.withLock { $0 = cluster }
        atexit {
            processCluster.withLock { $0 }?.remove()
        }
        return cluster.location
    }

    /// Runs `command` through /bin/sh (through `su postgres` when asked) and waits for it.
    /// Not Foundation's `Process`: the server that pg_ctl leaves running inherits the descriptor
    /// Process watches for the child's exit, and `waitUntilExit` would never return.
    fileprivate static func shell(_ command: String, asPostgres: Bool) throws {
        let line = asPostgres ? "su postgres -s /bin/sh -c \"\(command.replacingOccurrences(of: "\"", with: "\\\""))\"" : command
        let status = system(line)
        guard status == 0 else {
            throw CairnError(.internalError, "Starting the test PostgreSQL failed (status \(status)): \(command)")
        }
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw CairnError(.internalError, "No free loopback port for the test PostgreSQL.") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// The cluster this process started, for the exit handler.
private let processCluster = Mutex<ThrowawayPostgresCluster?>(nil)

/// A PostgreSQL cluster of its own, in a temporary folder on a free loopback port, started by
/// Debian's initdb and pg_ctl (as the `postgres` user when running as root, since initdb
/// refuses root). Fault tests stop and start it under a running store.
public struct ThrowawayPostgresCluster: Sendable {
    public let location: PostgresLocation
    let bin: String
    let folder: String
    let asRoot: Bool

    public init() throws {
        let roots = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let version = roots.sorted(by: { $0.compare($1, options: .numeric) == .orderedAscending }).last else {
            throw CairnError(.invalidState, "No PostgreSQL server for the tests: set CAIRN_TEST_POSTGRES_URL to a server the tests may create databases on, or install Debian's `postgresql` package (scripts/test does both).")
        }
        bin = "/usr/lib/postgresql/\(version)/bin"
        folder = NSTemporaryDirectory() + "cairn-test-pg-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        asRoot = getuid() == 0
        if asRoot { try PostgresTestServer.shell("chown postgres:postgres '\(folder)'", asPostgres: false) }
        try PostgresTestServer.shell("'\(bin)/initdb' -D '\(folder)/data' -A trust -U postgres -E UTF8 --no-sync > '\(folder)/initdb.log' 2>&1", asPostgres: asRoot)
        location = PostgresLocation(host: "127.0.0.1", port: try PostgresTestServer.freePort(), username: "postgres", password: nil,
                                    database: "postgres", sslMode: .disable)
        try start()
    }

    public func start() throws {
        try PostgresTestServer.shell("'\(bin)/pg_ctl' -D '\(folder)/data' -l '\(folder)/server.log' -w -t 120 -o \"-p \(location.port) -k '\(folder)' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200\" start > /dev/null", asPostgres: asRoot)
    }

    /// Stops the server at once (`immediate`: as a crash would, connections cut).
    public func stop() throws {
        try PostgresTestServer.shell("'\(bin)/pg_ctl' -D '\(folder)/data' -m immediate -w stop > /dev/null 2>&1", asPostgres: asRoot)
    }

    public func remove() {
        try? stop()
        try? FileManager.default.removeItem(atPath: folder)
    }
}
