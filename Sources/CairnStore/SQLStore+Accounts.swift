import CairnCore

/// Users, API tokens and per-resource permissions. The store keeps what it is given: password
/// hashing, token secrets and the rules of who may do what live in `AccountService`.
public protocol AccountStore: Sendable {
    func createUser(name: String, passwordHash: String, isAdmin: Bool, now: Int64) async throws -> UserAccount
    func fetchUser(name: String) async throws -> UserAccount?
    /// The account and its password hash, for signing in.
    func fetchCredentials(name: String) async throws -> (user: UserAccount, passwordHash: String)?
    func listUsers() async throws -> [UserAccount]
    func countAdmins() async throws -> Int
    func updateUser(name: String, passwordHash: String?, isAdmin: Bool?, now: Int64) async throws
    /// Deletes the user with their tokens and permissions.
    func deleteUser(name: String) async throws

    func createToken(_ token: APIToken, secretSHA256: String) async throws
    /// The token whose secret hashes to `secretSHA256`, with its owner's account.
    func fetchToken(secretSHA256: String) async throws -> (token: APIToken, user: UserAccount)?
    func listTokens(user: String?) async throws -> [APIToken]
    func revokeToken(id: String, now: Int64) async throws -> APIToken
    func markTokenUsed(id: String, now: Int64) async throws

    func setPermission(_ grant: PermissionGrant) async throws
    func removePermission(user: String, resourceType: ResourceType, resourceID: String) async throws -> Bool
    func fetchPermission(user: String, resourceType: ResourceType, resourceID: String) async throws -> Permission?
    func listPermissions(user: String) async throws -> [PermissionGrant]
    /// Every grant of one user on one resource type, keyed by resource id (for filtering lists).
    func permissionsByResource(user: String, resourceType: ResourceType) async throws -> [String: Permission]
    /// Moves a registered model's grants to its new name (rename keeps who may do what).
    func renamePermissionResource(resourceType: ResourceType, from: String, to: String) async throws
    /// Drops every grant on one resource (it was deleted).
    func removePermissions(resourceType: ResourceType, resourceID: String) async throws
}

extension SQLStore: AccountStore {
    static let userColumns = "user_id, name, is_admin, creation_time, last_update_time"

    static func user(_ row: SQLRow, from index: Int = 0) -> UserAccount {
        UserAccount(id: row[index], name: row[index + 1], isAdmin: row[index + 2], creationTime: row[index + 3], lastUpdateTime: row[index + 4])
    }

    public func createUser(name: String, passwordHash: String, isAdmin: Bool, now: Int64) async throws -> UserAccount {
        try await write("user.create", "user:\(name)", details: ["admin": .bool(isAdmin)]) { db in
            if try db.value(Int64.self, "SELECT user_id FROM users WHERE name = ?", [name]) != nil {
                throw CairnError.alreadyExists("User '\(name)' already exists.")
            }
            let id = try db.insert("""
                INSERT INTO users (name, password_hash, is_admin, creation_time, last_update_time) VALUES (?, ?, ?, ?, ?) RETURNING user_id
                """, [name, passwordHash, isAdmin, now, now])
            return UserAccount(id: id, name: name, isAdmin: isAdmin, creationTime: now, lastUpdateTime: now)
        }
    }

    public func fetchUser(name: String) async throws -> UserAccount? {
        try await read { db in try db.row("SELECT \(Self.userColumns) FROM users WHERE name = ?", [name]).map { Self.user($0) } }
    }

    public func fetchCredentials(name: String) async throws -> (user: UserAccount, passwordHash: String)? {
        try await read { db in
            try db.row("SELECT \(Self.userColumns), password_hash FROM users WHERE name = ?", [name]).map { (Self.user($0), $0[5]) }
        }
    }

    public func listUsers() async throws -> [UserAccount] {
        try await read { db in try db.rows("SELECT \(Self.userColumns) FROM users ORDER BY name").map { Self.user($0) } }
    }

    public func countAdmins() async throws -> Int {
        try await read { db in try db.value(Int.self, "SELECT COUNT(*) FROM users WHERE is_admin <> 0") ?? 0 }
    }

    public func updateUser(name: String, passwordHash: String?, isAdmin: Bool?, now: Int64) async throws {
        var details: [String: JSONValue] = ["password_changed": .bool(passwordHash != nil)]
        if let isAdmin { details["admin"] = .bool(isAdmin) }
        try await write("user.update", "user:\(name)", details: details) { db in
            let id = try Self.userID(db, name)
            if let passwordHash { try db.execute("UPDATE users SET password_hash = ? WHERE user_id = ?", [passwordHash, id]) }
            if let isAdmin { try db.execute("UPDATE users SET is_admin = ? WHERE user_id = ?", [isAdmin, id]) }
            try db.execute("UPDATE users SET last_update_time = ? WHERE user_id = ?", [now, id])
        }
    }

    public func deleteUser(name: String) async throws {
        try await write("user.delete", "user:\(name)") { db in
            let id = try Self.userID(db, name)
            try db.execute("DELETE FROM resource_permissions WHERE user_id = ?", [id])
            try db.execute("DELETE FROM api_tokens WHERE user_id = ?", [id])
            try db.execute("DELETE FROM users WHERE user_id = ?", [id])
        }
    }

    static func userID(_ db: any SQLSession, _ name: String) throws -> Int64 {
        guard let id = try db.value(Int64.self, "SELECT user_id FROM users WHERE name = ?", [name]) else {
            throw CairnError.notFound("User with username=\(name) not found")
        }
        return id
    }

    // MARK: - Tokens

    static let tokenColumns = "t.token_id, u.name, t.name, t.prefix, t.read_only, t.creation_time, t.expiration_time, t.revocation_time, t.last_used_time"

    static func token(_ row: SQLRow) -> APIToken {
        APIToken(id: row[0], user: row[1], name: row[2], prefix: row[3], isReadOnly: row[4], creationTime: row[5],
                 expirationTime: row[6], revocationTime: row[7], lastUsedTime: row[8])
    }

    public func createToken(_ token: APIToken, secretSHA256: String) async throws {
        var details: [String: JSONValue] = ["user": .string(token.user), "name": .string(token.name), "read_only": .bool(token.isReadOnly)]
        if let expiration = token.expirationTime { details["expires"] = .number(String(expiration)) }
        try await write("token.create", "token:\(token.id)", details: details) { db in
            let userID = try Self.userID(db, token.user)
            try db.execute("""
                INSERT INTO api_tokens (token_id, user_id, name, secret_sha256, prefix, read_only, creation_time, expiration_time)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, [token.id, userID, token.name, secretSHA256, token.prefix, token.isReadOnly, token.creationTime, token.expirationTime])
        }
    }

    public func fetchToken(secretSHA256: String) async throws -> (token: APIToken, user: UserAccount)? {
        try await read { db in
            try db.row("""
                SELECT \(Self.tokenColumns), u.user_id, u.name, u.is_admin, u.creation_time, u.last_update_time
                FROM api_tokens t JOIN users u ON u.user_id = t.user_id WHERE t.secret_sha256 = ?
                """, [secretSHA256]).map { (Self.token($0), Self.user($0, from: 9)) }
        }
    }

    public func listTokens(user: String?) async throws -> [APIToken] {
        try await read { db in
            let base = "SELECT \(Self.tokenColumns) FROM api_tokens t JOIN users u ON u.user_id = t.user_id"
            let rows = if let user {
                try db.rows(base + " WHERE u.name = ? ORDER BY t.creation_time, t.token_id", [user])
            } else {
                try db.rows(base + " ORDER BY u.name, t.creation_time, t.token_id")
            }
            return rows.map(Self.token)
        }
    }

    public func revokeToken(id: String, now: Int64) async throws -> APIToken {
        try await write("token.revoke", "token:\(id)") { db in
            try db.execute("UPDATE api_tokens SET revocation_time = COALESCE(revocation_time, ?) WHERE token_id = ?", [now, id])
            guard let row = try db.row("SELECT \(Self.tokenColumns) FROM api_tokens t JOIN users u ON u.user_id = t.user_id WHERE t.token_id = ?", [id]) else {
                throw CairnError.notFound("No API token with id '\(id)'. `cairn tokens list` shows the ids.")
            }
            return Self.token(row)
        }
    }

    /// Bookkeeping, not a change anyone made: no audit event.
    public func markTokenUsed(id: String, now: Int64) async throws {
        try await writeUnaudited { db in
            try db.executeDeferred("UPDATE api_tokens SET last_used_time = ? WHERE token_id = ?", [now, id])
        }
    }

    // MARK: - Permissions

    public func setPermission(_ grant: PermissionGrant) async throws {
        try await write("permission.grant", "\(grant.resourceType.rawValue):\(grant.resourceID)",
                        details: ["user": .string(grant.user), "permission": .string(grant.permission.rawValue)]) { db in
            let userID = try Self.userID(db, grant.user)
            try db.execute("""
                INSERT INTO resource_permissions (user_id, resource_type, resource_id, permission) VALUES (?, ?, ?, ?)
                ON CONFLICT (user_id, resource_type, resource_id) DO UPDATE SET permission = excluded.permission
                """, [userID, grant.resourceType.rawValue, grant.resourceID, grant.permission.rawValue])
        }
    }

    public func removePermission(user: String, resourceType: ResourceType, resourceID: String) async throws -> Bool {
        try await write("permission.revoke", "\(resourceType.rawValue):\(resourceID)", details: ["user": .string(user)]) { db in
            let userID = try Self.userID(db, user)
            return try db.execute("DELETE FROM resource_permissions WHERE user_id = ? AND resource_type = ? AND resource_id = ?",
                                  [userID, resourceType.rawValue, resourceID]) > 0
        }
    }

    public func fetchPermission(user: String, resourceType: ResourceType, resourceID: String) async throws -> Permission? {
        try await read { db in
            try db.value(String.self, """
                SELECT p.permission FROM resource_permissions p JOIN users u ON u.user_id = p.user_id
                WHERE u.name = ? AND p.resource_type = ? AND p.resource_id = ?
                """, [user, resourceType.rawValue, resourceID]).flatMap(Permission.init(rawValue:))
        }
    }

    public func listPermissions(user: String) async throws -> [PermissionGrant] {
        try await read { db in
            _ = try Self.userID(db, user)
            return try db.rows("""
                SELECT p.resource_type, p.resource_id, p.permission FROM resource_permissions p JOIN users u ON u.user_id = p.user_id
                WHERE u.name = ? ORDER BY p.resource_type, p.resource_id
                """, [user]).compactMap { row in
                guard let type = ResourceType(rawValue: row[0]), let level = Permission(rawValue: row[2]) else { return nil }
                return PermissionGrant(user: user, resourceType: type, resourceID: row[1], permission: level)
            }
        }
    }

    public func permissionsByResource(user: String, resourceType: ResourceType) async throws -> [String: Permission] {
        try await read { db in
            var out: [String: Permission] = [:]
            for row in try db.rows("""
                SELECT p.resource_id, p.permission FROM resource_permissions p JOIN users u ON u.user_id = p.user_id
                WHERE u.name = ? AND p.resource_type = ?
                """, [user, resourceType.rawValue]) {
                out[row[0]] = Permission(rawValue: row[1])
            }
            return out
        }
    }

    public func renamePermissionResource(resourceType: ResourceType, from: String, to: String) async throws {
        try await write("permission.move", "\(resourceType.rawValue):\(from)", details: ["to": .string(to)]) { db in
            _ = try db.execute("UPDATE resource_permissions SET resource_id = ? WHERE resource_type = ? AND resource_id = ?",
                           [to, resourceType.rawValue, from])
        }
    }

    public func removePermissions(resourceType: ResourceType, resourceID: String) async throws {
        try await write("permission.drop", "\(resourceType.rawValue):\(resourceID)") { db in
            _ = try db.execute("DELETE FROM resource_permissions WHERE resource_type = ? AND resource_id = ?", [resourceType.rawValue, resourceID])
        }
    }
}
