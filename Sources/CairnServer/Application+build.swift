import CairnArtifacts
import CairnCore
import CairnServices
import CairnStore
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL
import Logging
import ServiceLifecycle

/// The MLflow API version Cairn answers to (`/version`); the client refuses some features
/// below 3.4.
public let mlflowCompatibleVersion = "3.17.2"
public let cairnVersion = "0.1.0"

/// The services over one data folder, shared by `cairn server` and the CLI commands.
public struct CairnServiceSet: Sendable {
    public let tracking: TrackingService
    public let artifacts: ArtifactService
    public let registry: RegistryService
    public let explorer: ExplorerService
    public let webhooks: WebhookService
    public let retention: RetentionService
    public let traces: TraceService
    public let datasets: EvaluationDatasetService
    /// Users, tokens and sign-in; `access` checks every request's rule with them.
    public let accounts: AccountService
    public let access: AccessControl
    /// True when the server speaks HTTPS (session cookies are then `Secure`).
    public var servesTLS = false
    public let views: SavedViewService
    /// Free space on the disks of the database and the artifacts (`/health`).
    public var storage = StorageHealth(watched: [])
    /// Signs the audit chain's head; nil leaves it unsigned (`verify` then says so).
    public var auditKey: AuditKey?
    public var audit: AuditService { AuditService(store: tracking.store, key: auditKey) }
    public var report: ReportService { ReportService(tracking: tracking, artifacts: artifacts, staleAfterMillis: explorer.staleAfterMillis) }
    public var stats: StatsService { StatsService(explorer: explorer, tracking: tracking, registry: registry) }
    public var backup: BackupService { BackupService(store: tracking.store, index: artifacts.index, blobs: artifacts.blobs) }
}

/// Opens the database and the artifact blob store the configuration names.
public func openServices(_ configuration: CairnServerConfiguration) throws -> CairnServiceSet {
    // The metrics backend first: the store makes its metrics when it opens.
    _ = ServerMetrics.shared
    // The store first, so a data folder or database that cannot be used is the one line said
    // (the audit key lives beside the data, or must be given for PostgreSQL).
    let store = try openTrackingStore(configuration)
    let auditKey = try configuration.auditKey()
    store.useAuditKey(auditKey)
    let blobs = try openBlobStore(configuration)
    var tracking = TrackingService(store: store)
    let explorer = ExplorerService(store: store, staleAfterMillis: configuration.staleAfterMillis, costModel: configuration.costModel, now: tracking.now)
    if configuration.costModel != nil {
        let budgets = BudgetWatch(explorer: explorer, store: store, now: tracking.now)
        tracking.onRunEnded = { run in await budgets.runEnded(run) }
    }
    let alerts = MetricAlertWatch(store: store, runs: store, now: tracking.now)
    tracking.onMetricsLogged = { runID, metrics in await alerts.logged(runID: runID, metrics: metrics) }
    tracking.onAlertRulesChanged = { alerts.rulesChanged() }
    let accounts = AccountService(store: store, settings: configuration.auth, bcryptCost: configuration.bcryptCost,
                                  audit: AuditTrail(store: store), now: tracking.now)
    let access = AccessControl(accounts: accounts, tracking: tracking, registry: store, traces: store, datasets: store)
    if configuration.auth.isEnabled {
        tracking.onResourceCreated = { type, id in try await access.grantCreator(type, id: id) }
        tracking.onRegisteredModelRenamed = { old, new in try await access.registeredModelRenamed(from: old, to: new) }
        tracking.requireGateOverride = { name in
            do {
                try await access.require(.manage, on: .registeredModel, id: name)
            } catch let error as CairnError where error.code == .permissionDenied {
                throw RegistryService.overrideDenied(name: name)
            }
        }
    }
    let sender = WebhookSender(targetGuard: WebhookTargetGuard(allowPrivate: configuration.webhooksAllowPrivate))
    return CairnServiceSet(
        tracking: tracking, artifacts: ArtifactService(index: store, blobs: blobs, tracking: tracking),
        registry: RegistryService(registry: store, tracking: tracking, artifacts: store),
        explorer: explorer,
        webhooks: WebhookService(store: store, sender: sender, now: tracking.now),
        retention: RetentionService(tracking: tracking, explorer: explorer, store: store),
        traces: TraceService(store: store, tracking: tracking),
        datasets: EvaluationDatasetService(store: store, tracking: tracking),
        accounts: accounts, access: access,
        servesTLS: configuration.tls != nil,
        views: SavedViewService(store: store, tracking: tracking),
        storage: StorageHealth(watched: watchedDisks(store, configuration), probes: servicesToProbe(store, blobs)),
        auditKey: auditKey)
}

/// The servers `/health` asks: a PostgreSQL database and an S3 bucket (a local file and folder
/// are watched as disks instead).
func servicesToProbe(_ store: SQLStore, _ blobs: any BlobStore) -> [(what: String, check: @Sendable () async throws -> Void)] {
    var probes: [(what: String, check: @Sendable () async throws -> Void)] = []
    if store is PostgresTrackingStore { probes.append(("database", { try await store.ping() })) }
    // A blob that is never stored: the answer "not there" proves the bucket answers.
    if blobs is S3BlobStore { probes.append(("object store", { _ = try await blobs.contains(String(repeating: "0", count: 64)) })) }
    return probes
}

/// The local disks `/health` watches: the SQLite database's and the artifact folder's (a
/// PostgreSQL server and a bucket watch their own).
func watchedDisks(_ store: SQLStore, _ configuration: CairnServerConfiguration) -> [(String, String)] {
    var disks: [(String, String)] = []
    if let sqlite = store as? SQLiteTrackingStore {
        disks.append(("database", (sqlite.path as NSString).deletingLastPathComponent))
    }
    if configuration.s3Artifacts == nil { disks.append(("artifacts", configuration.artifactDirectory)) }
    return disks
}

/// The artifact blob store the configuration names: the bucket of `--artifacts-destination`
/// (not contacted here; `S3BlobStore.checkAccess` does that), or `<data-dir>/artifacts`.
public func openBlobStore(_ configuration: CairnServerConfiguration) throws -> any BlobStore {
    if let s3 = configuration.s3Artifacts { return S3BlobStore(configuration: s3) }
    do {
        return try LocalBlobStore(root: URL(fileURLWithPath: configuration.artifactDirectory))
    } catch {
        throw ConfigurationError(message: "Cannot open the artifact folder '\(configuration.artifactDirectory)': \(error). Choose a writable folder with --data-dir or CAIRN_DATA_DIR.")
    }
}

/// Opens the store the configuration names, creating the data folders it needs, with
/// errors that say which path failed and why.
public func openTrackingStore(_ configuration: CairnServerConfiguration) throws -> SQLStore {
    let databasePath: String
    switch try configuration.database() {
    case .sqlite(let path):
        databasePath = path
    case .postgres(let location):
        return try openPostgresStore(location, configuration)
    }
    let directories = [configuration.dataDirectory] + (configuration.s3Artifacts == nil ? [configuration.artifactDirectory] : [])
    for directory in directories where !directory.isEmpty {
        if let problem = makeDirectory(directory) {
            throw ConfigurationError(message: "Cannot use the data directory: \(problem). Choose a writable folder with --data-dir or CAIRN_DATA_DIR.")
        }
    }
    let databaseDirectory = (databasePath as NSString).deletingLastPathComponent
    if !databaseDirectory.isEmpty, let problem = makeDirectory(databaseDirectory) {
        throw ConfigurationError(message: "Cannot use the database's folder: \(problem). Choose a writable place with --backend-store-uri or CAIRN_BACKEND_STORE_URI.")
    }
    do {
        return try SQLiteTrackingStore(path: databasePath, durability: configuration.durability)
    } catch let error as CairnError {
        throw ConfigurationError(message: "Cannot open the database '\(databasePath)': \(error.message)")
    } catch {
        throw ConfigurationError(message: "Cannot open the database '\(databasePath)': \(error). Check that it is a Cairn SQLite file and that its folder is writable.")
    }
}

/// Connects to PostgreSQL (and the read replica, if any) and migrates; a database that cannot
/// be used is one line that says why and what to set.
func openPostgresStore(_ location: PostgresLocation, _ configuration: CairnServerConfiguration) throws -> PostgresTrackingStore {
    let replica: PostgresLocation?
    do {
        replica = try configuration.readReplicaURI.map { try PostgresLocation(uri: $0) }
    } catch let error as CairnError {
        throw ConfigurationError(message: "--read-replica-backend-store-uri: \(error.message)")
    }
    do {
        return try PostgresTrackingStore(location: location, poolSize: configuration.databasePoolSize, readReplica: replica)
    } catch let error as CairnError where error.code == .temporarilyUnavailable {
        throw ConfigurationError(message: "Cannot connect to PostgreSQL at \(location.host):\(location.port) (database \(location.database)): no answer or connection refused. Check that the server runs and accepts TCP connections there, then the host and port in --backend-store-uri (or CAIRN_BACKEND_STORE_URI).")
    } catch let error as CairnError {
        throw ConfigurationError(message: "Cannot use the PostgreSQL database \(location): \(error.message)")
    } catch {
        throw ConfigurationError(message: "Cannot use the PostgreSQL database \(location): \(error)")
    }
}

/// Creates `path` and its parents if needed and checks that files can be created in it;
/// returns what is wrong in words, or nil.
func makeDirectory(_ path: String) -> String? {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
        if !isDirectory.boolValue { return "'\(path)' is a file, not a folder" }
    } else {
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != path, let problem = makeDirectory(parent) { return problem }
        if mkdir(path, 0o755) != 0, errno != EEXIST {
            return "creating '\(path)' failed (\(String(cString: strerror(errno))))"
        }
    }
    let probe = (path as NSString).appendingPathComponent(".cairn-write-check-\(getpid())")
    let fd = open(probe, O_CREAT | O_WRONLY | O_EXCL, 0o600)
    if fd < 0 { return "files cannot be created in '\(path)' (\(String(cString: strerror(errno))))" }
    close(fd)
    unlink(probe)
    return nil
}

/// Builds the router with every route; used by `cairn server` and by the tests.
public func buildRouter(services: CairnServiceSet) -> Router<CairnRequestContext> {
    let access = services.access
    let router = Router(context: CairnRequestContext.self)
    // Request counts and durations for /metrics; outermost, so it sees the final status.
    _ = ServerMetrics.shared
    router.add(middleware: RequestMetricsMiddleware())
    router.add(middleware: MLflowErrorMiddleware())
    router.add(middleware: RequestIdentityMiddleware(accounts: services.accounts))
    addMetricsRoute(router, explorer: services.explorer)
    let storage = services.storage
    // "OK" as MLflow answers; 503 with the reasons while a disk Cairn writes to is full or the
    // database server or object store does not answer.
    router.get("health") { _, _ -> Response in
        let problems = await storage.problems()
        if problems.isEmpty { return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "OK"))) }
        return Response(status: .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: "DEGRADED: " + problems.joined(separator: "; "))))
    }
    router.get("version") { _, _ in mlflowCompatibleVersion }
    let serverInfo: @Sendable (Request, CairnRequestContext) async throws -> Response = { _, _ in
        jsonResponse(WireEncoding.reply { o in
            o.string("store_type", "SqlStore")
            o.bool("workspaces_enabled", false)
            o.bool("multipart_uploads_enabled", false)
            o.bool("multipart_downloads_enabled", false)
            o.string("cairn_version", cairnVersion)
        })
    }
    router.get("api/3.0/mlflow/server-info", use: serverInfo)
    router.get("ajax-api/3.0/mlflow/server-info", use: serverInfo)
    // MLflow's web app asks whether to send usage telemetry: never (MLflow's answer when its
    // telemetry is off), and records it sends anyway are dropped.
    router.get("ajax-api/3.0/mlflow/ui-telemetry") { _, _ in
        jsonResponse(WireEncoding.reply { o in
            o.key("disable_ui_events")
            o.writer.array([String]()) { _, _ in }
            o.bool("disable_ui_telemetry", true)
            o.int("ui_rollout_percentage", 0)
        })
    }
    router.post("ajax-api/3.0/mlflow/ui-telemetry") { _, _ in
        jsonResponse(WireEncoding.reply { o in o.string("status", "disabled") })
    }
    for group in endpointGroups(services: services) {
        for prefix in group.prefixes {
            mount(group.endpoints, at: prefix, on: router, rules: group.rules, access: access)
        }
    }
    OTLPTracesRoute(traces: services.traces, access: access).register(on: router)
    MLflowArtifactsAPI(artifacts: services.artifacts, registry: services.registry, traces: services.traces, access: access).register(on: router)
    MLflowAuthAPI(access: access).register(on: router)
    WebSession.register(on: router, accounts: services.accounts, secure: services.servesTLS)
    WebUI().register(on: router)
    return router
}

/// JSON endpoints mounted under the same prefixes with one table of access rules.
struct EndpointGroup: Sendable {
    let prefixes: [String]
    let endpoints: [MLflowEndpoint]
    let rules: [String: AccessRule]
}

/// Every JSON endpoint of the MLflow and Cairn APIs, where it is mounted and under which rules:
/// what `buildRouter` mounts, and what the access-matrix test walks.
func endpointGroups(services: CairnServiceSet) -> [EndpointGroup] {
    let trackingAPI = MLflowTrackingAPI(tracking: services.tracking)
    let tracesAPI = MLflowTracesAPI(traces: services.traces)
    let mlflow = trackingAPI.endpoints + MLflowRegistryAPI(registry: services.registry).endpoints
        + MLflowWebhooksAPI(webhooks: services.webhooks).endpoints + tracesAPI.v2Endpoints
    let cairn = MLflowRegistryAPI(registry: services.registry).cairnEndpoints
        + CairnAPI(explorer: services.explorer).endpoints + CairnReportAPI(report: services.report).endpoints
        + CairnStatsAPI(stats: services.stats).endpoints
        + MLflowWebhooksAPI(webhooks: services.webhooks).cairnEndpoints
        + CairnAuditAPI(audit: services.audit).endpoints
        + CairnViewsAPI(views: services.views).endpoints
        + CairnPermissionsAPI(access: services.access).endpoints
    return [
        EndpointGroup(prefixes: ["api/2.0/mlflow", "ajax-api/2.0/mlflow"], endpoints: mlflow, rules: AccessRules.mlflow),
        EndpointGroup(prefixes: ["ajax-api/2.0/mlflow"], endpoints: trackingAPI.ajaxEndpoints, rules: AccessRules.mlflow),
        EndpointGroup(prefixes: ["api/3.0/mlflow", "ajax-api/3.0/mlflow"],
                      endpoints: tracesAPI.v3Endpoints + MLflowDatasetsAPI(datasets: services.datasets).endpoints, rules: AccessRules.mlflowV3),
        EndpointGroup(prefixes: ["api/cairn/v1"], endpoints: cairn, rules: AccessRules.cairn),
    ]
}

/// Mounts MLflow endpoints under `prefix`: each route decodes the request's fields (with the
/// path's `:parameters`), calls its handler and answers JSON.
func mount(_ endpoints: [MLflowEndpoint], at prefix: String, on router: Router<CairnRequestContext>,
           rules: [String: AccessRule], access: AccessControl) {
    let group = router.group(RouterPath(prefix))
    for endpoint in endpoints {
        for method in endpoint.methods {
            let body = endpoint.body
            let rule = AccessRules.rule(rules, method: method, path: endpoint.path)
            let parameterNames = endpoint.path.split(separator: "/").filter { $0.hasPrefix(":") }.map { String($0.dropFirst()) }
            group.on(RouterPath(endpoint.path), method: HTTPRequest.Method(method)!) { request, context in
                var fields = try await decodeFields(request)
                if !parameterNames.isEmpty {
                    var values: [String: String] = [:]
                    for name in parameterNames {
                        let raw = context.parameters.get(name) ?? ""
                        values[name] = raw.removingPercentEncoding ?? raw
                    }
                    fields = fields.with(pathParameters: values)
                }
                return try await access.authorized(rule, fields) {
                    Response(status: .ok, headers: [.contentType: "application/json"], body: try await body(fields))
                }
            }
        }
    }
}

/// The webhook delivery worker as a service of the application: it runs beside the HTTP
/// server and stops with it (graceful shutdown cancels the wait between passes; an attempt
/// under way is cut short and its delivery, still leased, is retried when the lease ends).
struct WebhookDeliveryService: Service {
    let worker: WebhookDeliveryWorker

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await worker.run()
        }
    }
}

/// Work done every `intervalMillis` beside the HTTP server until graceful shutdown cancels the
/// wait: a failed pass is logged and tried again at the next. Every replica may run each of them
/// (each pass is safe to run on several at once).
struct PeriodicService: Service {
    let intervalMillis: Int64
    let failure: String
    let logger: Logger
    let pass: @Sendable () async throws -> Void

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: .milliseconds(intervalMillis))
                } catch { return }
                do {
                    try await pass()
                } catch {
                    logger.warning("\(failure); tried again at the next pass", metadata: ["cairn.error": "\(error)"])
                }
            }
        }
    }

    /// Applies the retention rules (`--retention-interval`): `apply` re-reads each run and skips
    /// one already deleted.
    static func retention(_ retention: RetentionService, intervalMillis: Int64, defaultRule: String?, logger: Logger) -> PeriodicService {
        PeriodicService(intervalMillis: intervalMillis, failure: "Retention pass failed", logger: logger) {
            let (plan, deleted) = try await RequestIdentity.$current.withValue(RetentionService.scheduledIdentity()) {
                let plan = try await retention.plan(experimentIDs: [], defaultRule: defaultRule)
                return (plan, try await retention.apply(plan))
            }
            logger.info("Retention applied", metadata: ["cairn.retention.deleted_runs": "\(deleted.count)",
                                                         "cairn.retention.experiments": "\(plan.experiments.count)"])
        }
    }

    /// Sends `run.stale` every minute (or half the stale threshold, when that is shorter) for
    /// RUNNING runs that logged nothing for `--stale-after`, once each: a run is marked and its
    /// event queued in one transaction, so only one replica reports it.
    static func staleRuns(_ webhooks: WebhookService, staleAfterMillis: Int64, logger: Logger) -> PeriodicService {
        PeriodicService(intervalMillis: max(1_000, min(60_000, staleAfterMillis / 2)), failure: "Stale-run check failed", logger: logger) {
            let runs = try await RequestIdentity.$current.withValue(staleRunsIdentity) {
                try await webhooks.notifyStaleRuns(staleAfterMillis: staleAfterMillis)
            }
            if !runs.isEmpty { logger.info("Stale runs reported", metadata: ["cairn.stale_runs": "\(runs.count)"]) }
        }
    }

    /// Who the audit log names for the stale marks: the server itself.
    static let staleRunsIdentity = RequestIdentity(user: "stale-runs", isAuthenticated: false, isAdmin: false, clientAddress: "internal", requestID: "")
}

/// Builds the whole application for `configuration`: store, services, routes.
/// `onServerRunning` receives the port actually bound (useful with port 0).
public func buildApplication(
    configuration: CairnServerConfiguration, logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) throws -> some ApplicationProtocol {
    let services = try openServices(configuration)
    let worker = WebhookDeliveryWorker(store: services.webhooks.store, sender: services.webhooks.sender,
                                       now: services.tracking.now, logger: logger)
    var background: [any Service] = [WebhookDeliveryService(worker: worker),
                                     PeriodicService.staleRuns(services.webhooks, staleAfterMillis: configuration.staleAfterMillis, logger: logger)]
    if let interval = configuration.retentionIntervalMillis {
        background.append(PeriodicService.retention(services.retention, intervalMillis: interval,
                                                    defaultRule: configuration.retentionDefault, logger: logger))
    }
    let responder = buildRouter(services: services).buildResponder()
    let serverName = "cairn/\(cairnVersion)"
    // Cairn's own request loop (HTTPConnection.swift), with Hummingbird's router and server.
    // Requests the HTTP/1.1 decoder refuses get MLflow's error JSON, not an empty 400.
    var server = HTTPServerBuilder { _ in
        CairnHTTP1Channel(responder: responder, serverName: serverName, additionalChannelHandlers: { [MalformedRequestHandler()] })
    }
    if configuration.requestLoop == .hummingbird {
        server = .http1(configuration: .init(additionalChannelHandlers: [MalformedRequestHandler()]))
    }
    if let tls = configuration.tls {
        server = try .tls(server, tlsConfiguration: makeTLSConfiguration(certificateFile: tls.certificateFile, keyFile: tls.keyFile))
    }
    return Application(
        responder: responder,
        server: server,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: serverName),
        services: background,
        onServerRunning: { channel in
            await bootstrapAccounts(services.accounts, configuration: configuration, logger: logger)
            await onServerRunning(channel.localAddress?.port ?? configuration.port)
        },
        logger: logger)
}

/// The server side of TLS from PEM files: the certificate chain (server certificate first) and
/// its private key. A file that cannot be read or parsed is one line that names it.
func makeTLSConfiguration(certificateFile: String, keyFile: String) throws -> TLSConfiguration {
    let chain: [NIOSSLCertificate]
    do {
        chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
    } catch {
        throw ConfigurationError(message: "--tls-cert-file '\(certificateFile)' cannot be read as a PEM certificate chain (\(error)). Give the server certificate, then its intermediates, in PEM.")
    }
    if chain.isEmpty { throw ConfigurationError(message: "--tls-cert-file '\(certificateFile)' holds no PEM certificate.") }
    let key: NIOSSLPrivateKey
    do {
        key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
    } catch {
        throw ConfigurationError(message: "--tls-key-file '\(keyFile)' cannot be read as a PEM private key (\(error)). Give the certificate's unencrypted private key in PEM.")
    }
    return TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
}

/// With accounts on: makes the first administrator from `CAIRN_ADMIN_PASSWORD` when the store
/// has none, or says how to make one. There is never a default password.
func bootstrapAccounts(_ accounts: AccountService, configuration: CairnServerConfiguration, logger: Logger) async {
    guard configuration.auth.isEnabled else { return }
    do {
        if try await accounts.hasAdmin() { return }
        if let admin = configuration.bootstrapAdmin {
            if try await accounts.store.fetchUser(name: admin.name) != nil {
                logger.warning("CAIRN_ADMIN_PASSWORD is set but the user it names exists and is not an administrator; it is left as it is. Choose another CAIRN_ADMIN_USER, or run `cairn users set-admin NAME` against this store.",
                               metadata: ["cairn.user": .string(admin.name)])
                return
            }
            _ = try await accounts.createUser(name: admin.name, password: admin.password, isAdmin: true)
            logger.notice("Created the first administrator from CAIRN_ADMIN_PASSWORD", metadata: ["cairn.user": .string(admin.name)])
        } else {
            logger.warning("Accounts are on but there is no administrator yet: run `cairn users create NAME --admin` against this store, or restart with CAIRN_ADMIN_PASSWORD (and CAIRN_ADMIN_USER, default admin) set.")
        }
    } catch {
        logger.error("Could not make the first administrator", metadata: ["cairn.error": .string("\(error)")])
    }
}

/// The largest JSON body any endpoint accepts; log-batch is further limited by its entity counts.
let maxJSONBodyBytes = 16 * 1024 * 1024

func decodeFields(_ request: Request) async throws -> RequestFields {
    if request.method == .get {
        return RequestFields(query: parseQuery(request.uri.query ?? ""))
    }
    let isLogBatch = request.uri.path.hasSuffix("runs/log-batch")
    let buffer = try await request.body.collect(upTo: isLogBatch ? Limits.maxBatchRequestBytes : maxJSONBodyBytes)
    let bytes = buffer.readableBytesView
    if isLogBatch, let batch = bytes.withContiguousStorageIfAvailable({ LogBatchDecoder.decode(UnsafeRawBufferPointer($0)) }) ?? nil {
        return RequestFields(logBatch: batch)
    }
    if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
        return try RequestFields(json: .object([]))
    }
    do {
        return try RequestFields(json: JSONValue.parse(bytes))
    } catch let error as JSONValue.SyntaxError {
        throw CairnError.invalidParameter("Malformed JSON in the request body: \(error.description). Send a JSON object with Content-Type: application/json.")
    }
}

/// `application/x-www-form-urlencoded` query parsing: `+` is a space, `%XX` a byte, keys may
/// repeat (`run_ids=a&run_ids=b`). Invalid escapes are kept as written.
func parseQuery(_ query: String) -> [String: [String]] {
    var result: [String: [String]] = [:]
    for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        let key = formDecode(parts[0])
        let value = parts.count > 1 ? formDecode(parts[1]) : ""
        result[key, default: []].append(value)
    }
    return result
}

private func formDecode(_ text: Substring) -> String {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.utf8.count)
    var iterator = Array(text.utf8)[...]
    while let byte = iterator.popFirst() {
        if byte == UInt8(ascii: "+") {
            bytes.append(0x20)
        } else if byte == UInt8(ascii: "%"), iterator.count >= 2,
                  let value = UInt8(String(decoding: iterator.prefix(2), as: UTF8.self), radix: 16) {
            bytes.append(value)
            iterator = iterator.dropFirst(2)
        } else {
            bytes.append(byte)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

func jsonResponse(_ bytes: [UInt8]) -> Response {
    Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
}
