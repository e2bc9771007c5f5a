import CairnCore
import CairnStore
import Crypto
import Foundation
import HummingbirdBcrypt
import Synchronization

/// How the server treats requests when accounts are on.
public struct AuthSettings: Sendable {
    /// Off: every request may do everything, as on a laptop (`cairn server` on loopback).
    public var isEnabled: Bool
    /// The permission of a signed-in user on a resource nobody granted them anything on
    /// (MLflow's default is `READ`).
    public var defaultPermission: Permission
    /// Failed sign-ins allowed per user name and per client address within 15 minutes before
    /// each further attempt is slowed down.
    public var freeFailedSignIns: (perUser: Int, perAddress: Int) = (5, 30)

    public init(isEnabled: Bool, defaultPermission: Permission = .read) {
        self.isEnabled = isEnabled
        self.defaultPermission = defaultPermission
    }
}

/// Users, API tokens, sign-in and grants. Passwords are hashed with bcrypt (cost 12) and
/// compared by bcrypt; a token's secret is 32 random bytes shown once, of which only a SHA-256
/// is stored.
///
/// bcrypt costs a quarter of a second by design, so it cannot run on every request (the
/// `mlflow` client sends its credentials with each one). Once a password or token has been
/// checked, a keyed digest of the credentials (HMAC-SHA256 with a key made at start and never
/// stored) is remembered in memory for `cacheLifetime`; the same credentials are then
/// recognised in microseconds. A change of password, admin flag, token or user on this replica
/// empties the memory at once; other replicas notice within `cacheLifetime`.
///
/// Failed sign-ins are slowed down per user name and per client address: after 5 failures for
/// one name (30 from one address, where several people may sit behind one NAT) within 15
/// minutes, each further attempt waits twice as long as the one before (0.25 s, 0.5 s, … at
/// most 8 s) before it is checked.
public final class AccountService: Sendable {
    public let store: any AccountStore
    public let settings: AuthSettings
    public let now: @Sendable () -> Int64
    let bcryptCost: UInt8
    let cacheLifetime: Duration
    private let cacheKey = SymmetricKey(size: .bits256)
    private let signedIn = Mutex<[Data: (identity: SignedIn, until: ContinuousClock.Instant)]>([:])
    private let failures = Mutex<[String: (count: Int, since: ContinuousClock.Instant)]>([:])
    /// Each user's grants read for access checks, remembered for `grantLifetime` (emptied by
    /// every change of grants or roles made through this service).
    private let grantMemory = Mutex<[String: (grants: GrantSet, until: ContinuousClock.Instant)]>([:])
    static let grantLifetime: Duration = .seconds(10)
    /// The experiment of each run and trace asked about: neither ever moves, so this never goes
    /// stale (run ids and trace ids, `tr-…`, never collide).
    private let runExperiments = Mutex<[String: String]>([:])

    /// Who a set of credentials signs in.
    public struct SignedIn: Sendable, Equatable {
        public var user: String
        public var isAdmin: Bool
        public var isReadOnly: Bool
    }

    /// Where sign-ins and refused sign-ins are recorded (they change nothing else).
    let audit: AuditTrail?

    public init(store: any AccountStore, settings: AuthSettings, bcryptCost: UInt8 = 12, cacheLifetime: Duration = .seconds(60),
                audit: AuditTrail? = nil, now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }) {
        self.store = store
        self.audit = audit
        self.settings = settings
        self.bcryptCost = bcryptCost
        self.cacheLifetime = cacheLifetime
        self.now = now
    }

    // MARK: - Users

    public func createUser(name: String, password: String, isAdmin: Bool = false) async throws -> UserAccount {
        try AccountLimits.validateUserName(name)
        try AccountLimits.validatePassword(password)
        let hash = await hashPassword(password)
        return try await store.createUser(name: name, passwordHash: hash, isAdmin: isAdmin, now: now())
    }

    public func user(named name: String) async throws -> UserAccount {
        guard let user = try await store.fetchUser(name: name) else {
            throw CairnError.notFound("User with username=\(name) not found")
        }
        return user
    }

    public func listUsers() async throws -> [UserAccount] {
        try await store.listUsers()
    }

    public func hasAdmin() async throws -> Bool {
        try await store.countAdmins() > 0
    }

    /// Changes a password. A user changing their own must give the current one.
    public func updatePassword(user name: String, password: String, currentPassword: String?) async throws {
        try AccountLimits.validatePassword(password)
        if let caller = RequestIdentity.current, caller.isAuthenticated, caller.user == name {
            guard let currentPassword, !currentPassword.isEmpty else {
                throw CairnError.invalidParameter("Current password is required when changing your own password.")
            }
            guard try await checkPassword(user: name, password: currentPassword) != nil else {
                throw CairnError.invalidParameter("Current password does not match.")
            }
            if password == currentPassword {
                throw CairnError.invalidParameter("New password must differ from the current password.")
            }
        }
        let hash = await hashPassword(password)
        try await store.updateUser(name: name, passwordHash: hash, isAdmin: nil, now: now())
        forgetSignIns()
    }

    public func updateAdmin(user name: String, isAdmin: Bool) async throws {
        if !isAdmin, try await user(named: name).isAdmin, try await store.countAdmins() == 1 {
            throw CairnError.invalidParameter("'\(name)' is the only administrator; make another user an administrator first.")
        }
        try await store.updateUser(name: name, passwordHash: nil, isAdmin: isAdmin, now: now())
        forgetSignIns()
    }

    public func deleteUser(name: String) async throws {
        if let caller = RequestIdentity.current, caller.isAuthenticated, caller.user == name {
            throw CairnError(.badRequest, "Users cannot delete their own account. Ask another admin to delete this user instead.")
        }
        try await store.deleteUser(name: name)
        forgetSignIns()
        forgetGrants()
    }

    // MARK: - Grants

    /// Every grant that decides `user`'s access (direct ones and those of their roles), as
    /// access checks read them: remembered for 10 s, so a request costs no database read for
    /// them; a change on this replica takes effect at once, on other replicas within those 10 s.
    public func grants(of user: String) async throws -> GrantSet {
        let instant = ContinuousClock.now
        if let known = grantMemory.withLock({ $0[user] }), known.until > instant { return known.grants }
        let grants = try await store.grantSet(user: user)
        grantMemory.withLock { memory in
            if memory.count > 100_000 { memory.removeAll() }
            memory[user] = (grants, instant.advanced(by: Self.grantLifetime))
        }
        return grants
    }

    /// What `user` (not an administrator) may do on one resource: their grants folded (a
    /// `DENY` wins), floored at the default permission.
    public func effectivePermission(user: String, on type: ResourceType, id: String) async throws -> Permission {
        Permission.effective(granted: try await grants(of: user).granted(type, id: id), default: settings.defaultPermission)
    }

    public func setGrant(_ grant: PermissionGrant) async throws {
        try await store.setPermission(grant)
        forgetGrants()
    }

    public func removeGrant(user: String, on type: ResourceType, id: String) async throws -> Bool {
        defer { forgetGrants() }
        return try await store.removePermission(user: user, resourceType: type, resourceID: id)
    }

    // MARK: - Roles

    public func createRole(workspace: String, name: String, description: String?) async throws -> Role {
        if name.trimmingCharacters(in: .whitespaces).isEmpty { throw CairnError.invalidParameter("Role name cannot be empty.") }
        if workspace.trimmingCharacters(in: .whitespaces).isEmpty { throw CairnError.invalidParameter("Workspace cannot be empty.") }
        return try await store.createRole(workspace: workspace, name: name, description: description, now: now())
    }

    public func updateRole(id: Int64, name: String?, description: String?) async throws -> Role {
        if name == nil && description == nil {
            throw CairnError.invalidParameter("At least one of 'name' or 'description' must be provided to update a role.")
        }
        if let name, name.trimmingCharacters(in: .whitespaces).isEmpty { throw CairnError.invalidParameter("Role name cannot be empty.") }
        return try await store.updateRole(id: id, name: name, description: description)
    }

    public func deleteRole(id: Int64) async throws {
        defer { forgetGrants() }
        try await store.deleteRole(id: id)
    }

    public func addRolePermission(roleID: Int64, resourceType: String, pattern: String, permission: Permission) async throws -> RolePermission {
        try RoleRules.validate(resourceType: resourceType, pattern: pattern, permission: permission)
        defer { forgetGrants() }
        return try await store.addRolePermission(roleID: roleID, resourceType: resourceType, pattern: pattern, permission: permission)
    }

    public func updateRolePermission(id: Int64, permission: Permission) async throws -> RolePermission {
        let current = try await store.fetchRolePermission(id: id)
        try RoleRules.validate(resourceType: current.resourceType, pattern: current.resourcePattern, permission: permission)
        defer { forgetGrants() }
        return try await store.updateRolePermission(id: id, permission: permission)
    }

    public func removeRolePermission(id: Int64) async throws {
        defer { forgetGrants() }
        try await store.removeRolePermission(id: id)
    }

    public func assignRole(user: String, roleID: Int64) async throws -> RoleAssignment {
        defer { forgetGrants() }
        return try await store.assignRole(user: user, roleID: roleID)
    }

    public func unassignRole(user: String, roleID: Int64) async throws {
        defer { forgetGrants() }
        try await store.unassignRole(user: user, roleID: roleID)
    }

    public func forgetGrants() {
        grantMemory.withLock { $0.removeAll() }
    }

    /// The experiment of a run or a trace (for access checks), nil when it does not exist.
    public func experiment(of runID: String, lookUp: () async throws -> String?) async throws -> String? {
        if let known = runExperiments.withLock({ $0[runID] }) { return known }
        guard let experiment = try await lookUp() else { return nil }
        runExperiments.withLock { memory in
            if memory.count > 100_000 { memory.removeAll() }
            memory[runID] = experiment
        }
        return experiment
    }

    // MARK: - Tokens

    /// A new token for `user`; the secret is in the answer only.
    public func createToken(user: String, name: String, expiresAfterMillis: Int64?, readOnly: Bool) async throws -> (token: APIToken, secret: String) {
        if let expiresAfterMillis, expiresAfterMillis <= 0 {
            throw CairnError.invalidParameter("A token's lifetime must be positive (e.g. --expires 90d).")
        }
        _ = try await self.user(named: user)
        var random = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) }
        let secret = "cairn_" + Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let created = now()
        let token = APIToken(id: UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16).description,
                             user: user, name: name, prefix: String(secret.prefix(12)), isReadOnly: readOnly, creationTime: created,
                             expirationTime: expiresAfterMillis.map { created + $0 }, revocationTime: nil, lastUsedTime: nil)
        try await store.createToken(token, secretSHA256: Self.sha256Hex(secret))
        return (token, secret)
    }

    public func listTokens(user: String?) async throws -> [APIToken] {
        try await store.listTokens(user: user)
    }

    /// Revokes a token. A user may revoke their own; an admin any.
    public func revokeToken(id: String) async throws -> APIToken {
        if let caller = RequestIdentity.current, caller.isAuthenticated, !caller.isAdmin {
            let mine = try await store.listTokens(user: caller.user)
            guard mine.contains(where: { $0.id == id }) else {
                throw CairnError.notFound("No API token with id '\(id)'. `cairn tokens list` shows the ids.")
            }
        }
        let token = try await store.revokeToken(id: id, now: now())
        forgetSignIns()
        return token
    }

    // MARK: - Signing in

    /// The user an `Authorization` header signs in, nil without a header; throws
    /// `UNAUTHENTICATED` for anything else (wrong password, unknown user, revoked or expired
    /// token, malformed or oversized header, another scheme).
    ///
    /// `isSession`: the web UI's session cookie. A stale one leaves the request anonymous and is
    /// not a failed sign-in (a page would otherwise count one per file it loads).
    public func authenticate(authorization: String?, clientAddress: String, isSession: Bool = false) async throws -> SignedIn? {
        guard let authorization else { return nil }
        guard authorization.utf8.count <= 8192 else { throw Self.notSignedIn("The Authorization header is too long.") }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2 else { throw Self.notSignedIn("The Authorization header is malformed.") }
        let scheme = parts[0].lowercased()
        let credential = parts[1].trimmingCharacters(in: .whitespaces)
        let digest = Data(HMAC<SHA256>.authenticationCode(for: Data((scheme + "\u{0}" + credential).utf8), using: cacheKey))
        let instant = ContinuousClock.now
        if let known = signedIn.withLock({ $0[digest] }), known.until > instant {
            return known.identity
        }
        let identity: SignedIn
        switch scheme {
        case "basic":
            guard let decoded = Data(base64Encoded: credential).flatMap({ String(data: $0, encoding: .utf8) }),
                  let colon = decoded.firstIndex(of: ":") else {
                throw Self.notSignedIn("The Basic credentials are malformed.")
            }
            let name = String(decoded[..<colon])
            let password = String(decoded[decoded.index(after: colon)...])
            try await waitAfterFailures(user: name, clientAddress: clientAddress)
            guard let user = try await checkPassword(user: name, password: password) else {
                recordFailure(user: name, clientAddress: clientAddress)
                await record("auth.sign_in_failed", "user:\(name)", ["method": "basic"])
                throw Self.notSignedIn()
            }
            identity = SignedIn(user: user.name, isAdmin: user.isAdmin, isReadOnly: false)
            await record("auth.sign_in", "user:\(user.name)", ["method": "basic"])
        case "bearer":
            if !isSession { try await waitAfterFailures(user: nil, clientAddress: clientAddress) }
            let found = try await store.fetchToken(secretSHA256: Self.sha256Hex(credential))
            guard let found, found.token.isActive(at: now()) else {
                if isSession { return nil }
                recordFailure(user: nil, clientAddress: clientAddress)
                // A known token names its owner and id; an unknown one nothing (never the secret).
                await record("auth.sign_in_failed", found.map { "token:\($0.token.id)" } ?? "token:unknown",
                             ["method": "token", "user": found?.user.name ?? ""])
                throw Self.notSignedIn("The token is unknown, expired or revoked.")
            }
            try? await store.markTokenUsed(id: found.token.id, now: now())
            identity = SignedIn(user: found.user.name, isAdmin: found.user.isAdmin && !found.token.isReadOnly, isReadOnly: found.token.isReadOnly)
            await record("auth.sign_in", "token:\(found.token.id)", ["method": "token", "user": found.user.name])
        default:
            throw Self.notSignedIn("Cairn accepts Basic credentials or a Bearer token.")
        }
        signedIn.withLock { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[digest] = (identity, instant.advanced(by: cacheLifetime))
        }
        return identity
    }

    /// Appends a sign-in event; a failure to record it is not the caller's failure (it is the
    /// log's, and `cairn audit verify` and completeness show gaps).
    /// Records a signed-in user's refused request (`access.denied`, with the actor from the
    /// request's identity): every attempt, not only every change, is in the audit log.
    public func recordRefusal(method: String, path: String) async {
        await record("access.denied", "route:\(method) \(path)", [:])
    }

    private func record(_ action: String, _ target: String, _ details: [String: String]) async {
        try? await audit?.record(action: action, target: target, details: details.mapValues { .string($0) })
    }

    /// The account when `password` is right, nil otherwise. An unknown user costs the same
    /// bcrypt time as a known one, so timing does not tell which names exist.
    func checkPassword(user name: String, password: String) async throws -> UserAccount? {
        let credentials = try await store.fetchCredentials(name: name)
        let hash = credentials?.passwordHash ?? Self.unknownUserHash
        let matches = await Self.offload { Bcrypt.verify(password, hash: hash) }
        return matches ? credentials?.user : nil
    }

    static let unknownUserHash = Bcrypt.hash("cairn: no such user", cost: 12)

    func hashPassword(_ password: String) async -> String {
        let cost = bcryptCost
        return await Self.offload { Bcrypt.hash(password, cost: cost) }
    }

    /// Runs bcrypt off Swift's cooperative threads, so a sign-in does not stall other requests.
    static func offload<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: work()) }
        }
    }

    public func forgetSignIns() {
        signedIn.withLock { $0.removeAll() }
    }

    public static func notSignedIn(_ detail: String = "") -> CairnError {
        CairnError(.unauthenticated, "You are not authenticated. \(detail.isEmpty ? "" : detail + " ")Send a user name and password (MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD) or an API token (MLFLOW_TRACKING_TOKEN).")
    }

    public static func sha256Hex(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    // MARK: - Slowing down guessing

    static let failureWindow: Duration = .seconds(15 * 60)

    private func failureKeys(user: String?, clientAddress: String) -> [String] {
        ["address:" + clientAddress] + (user.map { ["user:" + $0] } ?? [])
    }

    private func waitAfterFailures(user: String?, clientAddress: String) async throws {
        let instant = ContinuousClock.now
        let excess = failures.withLock { table in
            failureKeys(user: user, clientAddress: clientAddress).map { key -> Int in
                guard let entry = table[key] else { return -1 }
                if instant - entry.since > Self.failureWindow { table[key] = nil; return -1 }
                return entry.count - (key.hasPrefix("user:") ? settings.freeFailedSignIns.perUser : settings.freeFailedSignIns.perAddress)
            }.max() ?? -1
        }
        guard excess >= 0 else { return }
        let exponent = min(excess, 5)
        try await Task.sleep(for: .milliseconds(250 << exponent))
    }

    private func recordFailure(user: String?, clientAddress: String) {
        let instant = ContinuousClock.now
        failures.withLock { table in
            if table.count > 100_000 { table.removeAll() }
            for key in failureKeys(user: user, clientAddress: clientAddress) {
                let entry = table[key]
                table[key] = (count: (entry?.count ?? 0) + 1, since: entry?.since ?? instant)
            }
        }
    }
}
