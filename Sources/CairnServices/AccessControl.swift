import CairnCore
import CairnStore

/// What a request needs before it may run: one rule per endpoint (`AccessRules`), checked in
/// one place before the endpoint's service method, against the caller in
/// `RequestIdentity.current`.
public enum AccessRule: Sendable, Equatable {
    /// Anyone, signed in or not (health, version, the UI's files, sign-in itself).
    case open
    /// Any signed-in user (creating an experiment or a registered model, searches whose
    /// results are filtered to what the caller may read, their own account and tokens).
    case signedIn
    /// Administrators only (accounts, webhooks, store-wide reports).
    case admin
    /// `level` on the experiment whose id is in `field`, or on every one of them (a list).
    case experiment(Permission, field: String)
    /// `level` on the experiment named in `field`.
    case experimentName(Permission, field: String)
    /// `level` on the experiment of the run in `run_id` (or MLflow's older `run_uuid`), or
    /// of every run listed in `field`.
    case run(Permission, field: String = "run_id")
    /// `level` on the registered model named in `field`.
    case registeredModel(Permission, field: String = "name")
    /// `level` on the experiment of the logged model in `field`.
    case loggedModel(Permission, field: String = "model_id")
    /// `level` on the experiment that owns the artifact path in `field` (the proxy's
    /// `<experiment id>/…` layout); other paths are for administrators.
    case artifactPath(Permission, field: String)
    /// `level` on the experiment of the trace whose id is in `field` (or of every one listed).
    case trace(Permission, field: String = "trace_id")
    /// `level` on every experiment an evaluation dataset is linked to; one linked to none is
    /// for administrators (as in MLflow).
    case dataset(Permission, field: String = "dataset_id")
    /// `level` on every experiment named in `fields`, of which there must be at least one (a
    /// search or creation that names no experiment would reach every one).
    case experimentsNamed(Permission, fields: [String])
    /// Figures over the whole store (report, dashboard, cost, storage): for everyone signed in
    /// when the default permission lets them read every experiment, else for administrators.
    /// Experiment ids named in the request are checked for READ as well.
    case storeWide
    /// Every one of these rules.
    case all([AccessRule])
}

/// Checks rules and answers "may the caller read this?" for the lists that filter. When
/// accounts are off every check passes.
///
/// A resource the caller may not read answers `403 PERMISSION_DENIED` with a message that
/// names nothing (no experiment or model name), and only when it exists; an id that does not
/// exist answers 404 as before, so nothing is learnt but that a random 128-bit run id or an
/// experiment number exists. `experiments/get-by-name` of an unreadable experiment answers the
/// same 404 as a name that does not exist, so names do not leak.
public struct AccessControl: Sendable {
    public let accounts: AccountService
    let tracking: TrackingService
    let registry: any RegistryStore
    let traces: any TraceStore
    let datasets: any EvaluationDatasetStore

    public init(accounts: AccountService, tracking: TrackingService, registry: any RegistryStore, traces: any TraceStore,
                datasets: any EvaluationDatasetStore) {
        self.accounts = accounts
        self.tracking = tracking
        self.registry = registry
        self.traces = traces
        self.datasets = datasets
    }

    public var isEnabled: Bool { accounts.settings.isEnabled }

    static func denied() -> CairnError {
        CairnError(.permissionDenied, "Permission denied. Ask an administrator or the resource's manager for access.")
    }

    /// The signed-in caller, or `UNAUTHENTICATED`.
    func caller() throws -> RequestIdentity {
        guard let identity = RequestIdentity.current, identity.isAuthenticated, identity.user != nil else {
            throw AccountService.notSignedIn()
        }
        return identity
    }

    /// The signed-in caller's name, or `UNAUTHENTICATED`.
    public func signedInCaller() throws -> String {
        try caller().user!
    }

    public func requireAdmin() throws {
        if !(try caller().isAdmin) { throw Self.denied() }
    }

    /// The caller is `user`, or an administrator.
    public func requireSelfOrAdmin(_ user: String) throws {
        let identity = try caller()
        if !identity.isAdmin && identity.user != user { throw Self.denied() }
    }

    /// May manage the roles of `workspace` (nil: the role or grant named does not exist, so
    /// only an administrator passes and then sees the 404): an administrator, or a user whose
    /// role grants MANAGE on that workspace.
    public func requireRoleManager(workspace: String?) async throws {
        let identity = try caller()
        if identity.isAdmin { return }
        guard let workspace, workspace == RoleRules.defaultWorkspace,
              try await accounts.grants(of: identity.user!).isWorkspaceAdmin, !identity.isReadOnly else { throw Self.denied() }
    }

    /// May read the roles of `workspace`: an administrator, or a user holding a role there.
    public func requireRoleViewer(workspace: String?) async throws {
        let identity = try caller()
        if identity.isAdmin { return }
        guard let workspace, try await accounts.store.listUserRoles(user: identity.user!).contains(where: { $0.workspace == workspace }) else {
            throw Self.denied()
        }
    }

    /// What `user` may do on a resource (for `users/permissions/get`).
    public func permission(of user: String, on type: ResourceType, id: String) async throws -> Permission {
        guard let account = try await accounts.store.fetchUser(name: user) else {
            throw CairnError.notFound("User with username=\(user) not found")
        }
        if account.isAdmin { return .manage }
        return try await accounts.effectivePermission(user: user, on: type, id: id)
    }

    /// The caller's permission on one resource: MANAGE for administrators, else their grants
    /// (direct and through roles) folded and floored at the default; at most READ with a
    /// read-only token.
    public func permission(on type: ResourceType, id: String) async throws -> Permission {
        let identity = try caller()
        if identity.isAdmin { return .manage }
        let granted = try await accounts.effectivePermission(user: identity.user!, on: type, id: id)
        return identity.isReadOnly && granted.rank > Permission.read.rank ? .read : granted
    }

    public func require(_ level: Permission, on type: ResourceType, id: String) async throws {
        let identity = try caller()
        if identity.isReadOnly && level.rank > Permission.read.rank {
            throw CairnError(.permissionDenied, "Permission denied: this API token is read-only.")
        }
        guard try await permission(on: type, id: id).allows(level) else { throw Self.denied() }
    }

    /// What the caller may do, for the web UI to hide buttons that would fail: their level on
    /// each experiment and registered model named (at most `maxNamed` of each). With accounts
    /// off everything is allowed (MANAGE, administrator), as every check passes.
    public func effectivePermissions(experimentIDs: [String], registeredModels: [String]) async throws -> EffectivePermissions {
        for (kind, list) in [("experiment_ids", experimentIDs), ("registered_model_names", registeredModels)] where list.count > Self.maxNamed {
            throw CairnError.invalidParameter("At most \(Self.maxNamed) \(kind) per request; \(list.count) were sent.")
        }
        guard isEnabled else {
            return EffectivePermissions(accountsEnabled: false, user: nil, isAdmin: true, isReadOnly: false,
                                        experiments: experimentIDs.map { ($0, .manage) }, registeredModels: registeredModels.map { ($0, .manage) })
        }
        let identity = try caller()
        var experiments: [(String, Permission)] = []
        for id in experimentIDs { experiments.append((id, try await permission(on: .experiment, id: id))) }
        var models: [(String, Permission)] = []
        for name in registeredModels { models.append((name, try await permission(on: .registeredModel, id: name))) }
        return EffectivePermissions(accountsEnabled: true, user: identity.user, isAdmin: identity.isAdmin, isReadOnly: identity.isReadOnly,
                                    experiments: experiments, registeredModels: models)
    }

    /// How many experiments or models one `effectivePermissions` call may name.
    public static let maxNamed = 1000

    /// Checks `rule` with the request's field values (`values(name)`: every value of a field,
    /// empty when absent). Resources that do not exist pass, so the endpoint answers its own 404.
    public func authorize(_ rule: AccessRule, values: (String) -> [String]) async throws {
        guard isEnabled, rule != .open else { return }
        let identity = try caller()
        // Administrators may do everything: no resource is looked up for them.
        if identity.isAdmin { return }
        switch rule {
        case .open, .signedIn:
            return
        case .admin:
            if !identity.isAdmin { throw Self.denied() }
        case .experiment(let level, let field):
            for id in values(field) { try await require(level, on: .experiment, id: id) }
        case .experimentName(let level, let field):
            for name in values(field) {
                guard let experiment = try? await tracking.getExperimentByName(name) else { continue }
                do {
                    try await require(level, on: .experiment, id: experiment.experimentID)
                } catch let error as CairnError where error.code == .permissionDenied && level == .read {
                    throw CairnError.notFound("Could not find experiment with name '\(name)'")
                }
            }
        case .run(let level, let field):
            for id in values(field) + (field == "run_id" ? values("run_uuid") : []) {
                let lookUp: () async throws -> String? = { try? await tracking.store.fetchRunInfo(id: id).experimentID }
                guard let experiment = try await accounts.experiment(of: id, lookUp: lookUp) else { continue }
                try await require(level, on: .experiment, id: experiment)
            }
        case .registeredModel(let level, let field):
            for name in values(field) { try await require(level, on: .registeredModel, id: name) }
        case .trace(let level, let field):
            for id in values(field) {
                let lookUp: () async throws -> String? = { try? await traces.fetchTraceInfo(id: id).experimentID }
                guard let experiment = try await accounts.experiment(of: id, lookUp: lookUp) else { continue }
                try await require(level, on: .experiment, id: experiment)
            }
        case .dataset(let level, let field):
            for id in values(field) {
                guard let dataset = try? await datasets.fetchEvaluationDataset(id: id) else { continue }
                if dataset.experimentIDs.isEmpty { throw Self.denied() }
                for experiment in dataset.experimentIDs { try await require(level, on: .experiment, id: experiment) }
            }
        case .experimentsNamed(let level, let fields):
            let named = fields.flatMap(values)
            if named.isEmpty { throw CairnError(.permissionDenied, "Permission denied: name the experiments (experiment_ids) this request is for.") }
            for id in named { try await require(level, on: .experiment, id: id) }
        case .loggedModel(let level, let field):
            for id in values(field) {
                guard let model = try? await tracking.store.fetchLoggedModel(id: id, allowDeleted: true) else { continue }
                try await require(level, on: .experiment, id: model.experimentID)
            }
        case .storeWide:
            if !identity.isAdmin && !accounts.settings.defaultPermission.canRead {
                let named = values("experiment_id") + values("experiment_ids")
                if named.isEmpty { throw Self.denied() }
            }
            try await authorize(.experiment(.read, field: "experiment_id"), values: values)
            try await authorize(.experiment(.read, field: "experiment_ids"), values: values)
        case .all(let rules):
            for rule in rules { try await authorize(rule, values: values) }
        case .artifactPath(let level, let field):
            for path in values(field) {
                let first = path.split(separator: "/", omittingEmptySubsequences: true).first.map(String.init) ?? ""
                if !first.isEmpty, first.allSatisfy(\.isNumber) {
                    try await require(level, on: .experiment, id: first)
                } else if !identity.isAdmin {
                    throw Self.denied()
                }
            }
        }
    }

    /// Which resources of one type the caller may read, for filtering lists: nil means all.
    public func readable(_ type: ResourceType) async throws -> ReadableSet? {
        guard isEnabled else { return nil }
        let identity = try caller()
        if identity.isAdmin { return nil }
        return ReadableSet(type: type, grants: try await accounts.grants(of: identity.user!), defaultPermission: accounts.settings.defaultPermission)
    }

    /// The resources of one type a caller may read: their effective permission on it reads.
    public struct ReadableSet: Sendable {
        public var type: ResourceType
        public var grants: GrantSet
        public var defaultPermission: Permission

        public func contains(_ id: String) -> Bool {
            Permission.effective(granted: grants.granted(type, id: id), default: defaultPermission).canRead
        }
    }

    /// Moves the grants on a renamed registered model to its new name, or drops them when it
    /// was deleted.
    public func registeredModelRenamed(from old: String, to new: String?) async throws {
        if let new {
            try await accounts.store.renamePermissionResource(resourceType: .registeredModel, from: old, to: new)
        } else {
            try await accounts.store.removePermissions(resourceType: .registeredModel, resourceID: old)
        }
        accounts.forgetGrants()
    }

    /// Gives the creator of a new experiment or registered model MANAGE on it.
    public func grantCreator(_ type: ResourceType, id: String) async throws {
        guard isEnabled, let identity = RequestIdentity.current, identity.isAuthenticated, let user = identity.user else { return }
        try await accounts.setGrant(PermissionGrant(user: user, resourceType: type, resourceID: id, permission: .manage))
    }
}

/// The caller's levels, as `AccessControl.effectivePermissions` answers them.
public struct EffectivePermissions: Sendable {
    public var accountsEnabled: Bool
    public var user: String?
    public var isAdmin: Bool
    /// A read-only token: nothing but reading, creating included.
    public var isReadOnly: Bool
    public var experiments: [(String, Permission)]
    public var registeredModels: [(String, Permission)]

    /// Whether the caller may create experiments and registered models.
    public var canCreate: Bool { !isReadOnly }
}
