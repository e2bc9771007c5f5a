import CairnCore

/// Users, API tokens and per-resource permissions. The store keeps what it is given: password
/// hashing, token secrets and the rules of who may do what live in `AccountService`.
public protocol AccountStore: RoleStore {
    func createUser(name: String, passwordHash: String, isAdmin: Bool, now: Int64) async throws -> UserAccount
    func fetchUser(name: String) async throws -> UserAccount?
    /// The account and its password hash, for signing in.
    func fetchCredentials(name: String) async throws -> (user: UserAccount, passwordHash: String)?
    func listUsers() async throws -> [UserAccount]
    func countAdmins() async throws -> Int
    func updateUser(name: String, passwordHash: String?, isAdmin: Bool?, now: Int64) async throws
    /// Deletes the user with their tokens, permissions and role assignments.
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
    /// Moves a registered model's grants (direct and in roles) to its new name (rename keeps who
    /// may do what).
    func renamePermissionResource(resourceType: ResourceType, from: String, to: String) async throws
    /// Drops every grant on one resource, direct and in roles (it was deleted; a later one of
    /// the same name must not inherit them).
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
                throw CairnError.alreadyExists("User (username=\(name)) already exists.")
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
            try db.execute("DELETE FROM user_roles WHERE user_id = ?", [id])
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
            _ = try db.execute("UPDATE role_permissions SET resource_pattern = ? WHERE resource_type = ? AND resource_pattern = ?",
                               [to, resourceType.rawValue, from])
        }
    }

    public func removePermissions(resourceType: ResourceType, resourceID: String) async throws {
        try await write("permission.drop", "\(resourceType.rawValue):\(resourceID)") { db in
            _ = try db.execute("DELETE FROM resource_permissions WHERE resource_type = ? AND resource_id = ?", [resourceType.rawValue, resourceID])
            _ = try db.execute("DELETE FROM role_permissions WHERE resource_type = ? AND resource_pattern = ?", [resourceType.rawValue, resourceID])
        }
    }
}

// MARK: - Roles

/// MLflow 3's roles: named sets of grants in a workspace, assigned to users. The messages of
/// conflicts and missing rows are MLflow's.
public protocol RoleStore: Sendable {
    func createRole(workspace: String, name: String, description: String?, now: Int64) async throws -> Role
    /// The role with its grants, or `RESOURCE_DOES_NOT_EXIST`.
    func fetchRole(id: Int64) async throws -> Role
    /// Roles with their grants, of the given workspaces (every workspace when nil), by id.
    func listRoles(workspaces: [String]?) async throws -> [Role]
    func updateRole(id: Int64, name: String?, description: String?) async throws -> Role
    /// Deletes a role with its grants and assignments.
    func deleteRole(id: Int64) async throws
    func addRolePermission(roleID: Int64, resourceType: String, pattern: String, permission: Permission) async throws -> RolePermission
    func fetchRolePermission(id: Int64) async throws -> RolePermission
    func updateRolePermission(id: Int64, permission: Permission) async throws -> RolePermission
    func removeRolePermission(id: Int64) async throws
    func assignRole(user: String, roleID: Int64) async throws -> RoleAssignment
    func unassignRole(user: String, roleID: Int64) async throws
    func listUserRoles(user: String) async throws -> [Role]
    func listRoleUsers(roleID: Int64) async throws -> [RoleAssignment]
    /// Every grant that decides `user`'s access: direct ones and those of their roles in the
    /// default workspace.
    func grantSet(user: String) async throws -> GrantSet
}

extension SQLStore: RoleStore {
    static func roleNotFound(_ id: Int64) -> CairnError { CairnError.notFound("Role with id=\(id) not found") }

    static func rolePermission(_ row: SQLRow) -> RolePermission {
        RolePermission(id: row[0], roleID: row[1], resourceType: row[2], resourcePattern: row[3],
                       permission: Permission(rawValue: row[4]) ?? .noPermissions)
    }

    static let rolePermissionColumns = "role_permission_id, role_id, resource_type, resource_pattern, permission"

    /// The roles whose ids `where` selects (a SQL condition on `roles`), with their grants.
    static func roles(_ db: any SQLSession, where condition: String, _ arguments: [any SQLBindable]) throws -> [Role] {
        var roles = try db.rows("SELECT role_id, workspace, name, description FROM roles WHERE \(condition) ORDER BY role_id", arguments).map {
            Role(id: $0[0], workspace: $0[1], name: $0[2], description: $0[3])
        }
        guard !roles.isEmpty else { return [] }
        var position: [Int64: Int] = [:]
        for (index, role) in roles.enumerated() { position[role.id] = index }
        for row in try db.rows("""
            SELECT \(rolePermissionColumns) FROM role_permissions WHERE role_id IN (SELECT role_id FROM roles WHERE \(condition))
            ORDER BY role_permission_id
            """, arguments) {
            let permission = rolePermission(row)
            if let index = position[permission.roleID] { roles[index].permissions.append(permission) }
        }
        return roles
    }

    static func role(_ db: any SQLSession, _ id: Int64) throws -> Role {
        guard let role = try roles(db, where: "role_id = ?", [id]).first else { throw roleNotFound(id) }
        return role
    }

    public func createRole(workspace: String, name: String, description: String?, now: Int64) async throws -> Role {
        try await write("role.create", "role:\(workspace)/\(name)", details: ["description": description.map(JSONValue.string) ?? .null]) { db in
            if try db.value(Int64.self, "SELECT role_id FROM roles WHERE workspace = ? AND name = ?", [workspace, name]) != nil {
                throw CairnError.alreadyExists("Role (name=\(name), workspace=\(workspace)) already exists.")
            }
            let id = try db.insert("INSERT INTO roles (workspace, name, description, creation_time) VALUES (?, ?, ?, ?) RETURNING role_id",
                                   [workspace, name, description, now])
            return Role(id: id, workspace: workspace, name: name, description: description)
        }
    }

    public func fetchRole(id: Int64) async throws -> Role {
        try await read { db in try Self.role(db, id) }
    }

    public func listRoles(workspaces: [String]?) async throws -> [Role] {
        try await read { db in
            guard let workspaces else { return try Self.roles(db, where: "1 = 1", []) }
            if workspaces.isEmpty { return [] }
            let marks = Array(repeating: "?", count: workspaces.count).joined(separator: ", ")
            return try Self.roles(db, where: "workspace IN (\(marks))", workspaces)
        }
    }

    public func updateRole(id: Int64, name: String?, description: String?) async throws -> Role {
        var details: [String: JSONValue] = [:]
        if let name { details["name"] = .string(name) }
        if let description { details["description"] = .string(description) }
        return try await write("role.update", "role:\(id)", details: details) { db in
            let role = try Self.role(db, id)
            if let name, name != role.name,
               try db.value(Int64.self, "SELECT role_id FROM roles WHERE workspace = ? AND name = ?", [role.workspace, name]) != nil {
                throw CairnError.alreadyExists("Role (name=\(name), workspace=\(role.workspace)) already exists.")
            }
            if let name { try db.execute("UPDATE roles SET name = ? WHERE role_id = ?", [name, id]) }
            if let description { try db.execute("UPDATE roles SET description = ? WHERE role_id = ?", [description, id]) }
            return try Self.role(db, id)
        }
    }

    public func deleteRole(id: Int64) async throws {
        try await write("role.delete", "role:\(id)") { db in
            _ = try Self.role(db, id)
            try db.execute("DELETE FROM user_roles WHERE role_id = ?", [id])
            try db.execute("DELETE FROM role_permissions WHERE role_id = ?", [id])
            try db.execute("DELETE FROM roles WHERE role_id = ?", [id])
        }
    }

    public func addRolePermission(roleID: Int64, resourceType: String, pattern: String, permission: Permission) async throws -> RolePermission {
        try await write("role.permission.add", "role:\(roleID)",
                        details: ["resource_type": .string(resourceType), "resource_pattern": .string(pattern), "permission": .string(permission.rawValue)]) { db in
            _ = try Self.role(db, roleID)
            if try db.value(Int64.self, "SELECT role_permission_id FROM role_permissions WHERE role_id = ? AND resource_type = ? AND resource_pattern = ?",
                            [roleID, resourceType, pattern]) != nil {
                throw CairnError.alreadyExists("Role permission (role_id=\(roleID), resource_type=\(resourceType), resource_pattern=\(pattern)) already exists.")
            }
            let id = try db.insert("""
                INSERT INTO role_permissions (role_id, resource_type, resource_pattern, permission) VALUES (?, ?, ?, ?) RETURNING role_permission_id
                """, [roleID, resourceType, pattern, permission.rawValue])
            return RolePermission(id: id, roleID: roleID, resourceType: resourceType, resourcePattern: pattern, permission: permission)
        }
    }

    static func rolePermission(_ db: any SQLSession, _ id: Int64) throws -> RolePermission {
        guard let row = try db.row("SELECT \(rolePermissionColumns) FROM role_permissions WHERE role_permission_id = ?", [id]) else {
            throw CairnError.notFound("Role permission with id=\(id) not found")
        }
        return rolePermission(row)
    }

    public func fetchRolePermission(id: Int64) async throws -> RolePermission {
        try await read { db in try Self.rolePermission(db, id) }
    }

    public func updateRolePermission(id: Int64, permission: Permission) async throws -> RolePermission {
        try await write("role.permission.update", "role_permission:\(id)", details: ["permission": .string(permission.rawValue)]) { db in
            var grant = try Self.rolePermission(db, id)
            try db.execute("UPDATE role_permissions SET permission = ? WHERE role_permission_id = ?", [permission.rawValue, id])
            grant.permission = permission
            return grant
        }
    }

    public func removeRolePermission(id: Int64) async throws {
        try await write("role.permission.remove", "role_permission:\(id)") { db in
            _ = try Self.rolePermission(db, id)
            try db.execute("DELETE FROM role_permissions WHERE role_permission_id = ?", [id])
        }
    }

    public func assignRole(user: String, roleID: Int64) async throws -> RoleAssignment {
        try await write("role.assign", "role:\(roleID)", details: ["user": .string(user)]) { db in
            let userID = try Self.userID(db, user)
            _ = try Self.role(db, roleID)
            if try db.value(Int64.self, "SELECT assignment_id FROM user_roles WHERE user_id = ? AND role_id = ?", [userID, roleID]) != nil {
                throw CairnError.alreadyExists("User role assignment (user_id=\(userID), role_id=\(roleID)) already exists")
            }
            let id = try db.insert("INSERT INTO user_roles (user_id, role_id) VALUES (?, ?) RETURNING assignment_id", [userID, roleID])
            return RoleAssignment(id: id, userID: userID, roleID: roleID)
        }
    }

    public func unassignRole(user: String, roleID: Int64) async throws {
        try await write("role.unassign", "role:\(roleID)", details: ["user": .string(user)]) { db in
            let userID = try Self.userID(db, user)
            if try db.execute("DELETE FROM user_roles WHERE user_id = ? AND role_id = ?", [userID, roleID]) == 0 {
                throw CairnError.notFound("User role assignment (user_id=\(userID), role_id=\(roleID)) not found")
            }
        }
    }

    public func listUserRoles(user: String) async throws -> [Role] {
        try await read { db in
            let userID = try Self.userID(db, user)
            return try Self.roles(db, where: "role_id IN (SELECT role_id FROM user_roles WHERE user_id = ?)", [userID])
        }
    }

    public func listRoleUsers(roleID: Int64) async throws -> [RoleAssignment] {
        try await read { db in
            _ = try Self.role(db, roleID)
            return try db.rows("SELECT assignment_id, user_id, role_id FROM user_roles WHERE role_id = ? ORDER BY assignment_id", [roleID]).map {
                RoleAssignment(id: $0[0], userID: $0[1], roleID: $0[2])
            }
        }
    }

    public func grantSet(user: String) async throws -> GrantSet {
        try await read { db in
            var set = GrantSet()
            for row in try db.rows("""
                SELECT p.resource_type, p.resource_id, p.permission FROM resource_permissions p JOIN users u ON u.user_id = p.user_id
                WHERE u.name = ?
                UNION ALL
                SELECT rp.resource_type, rp.resource_pattern, rp.permission FROM role_permissions rp
                JOIN roles r ON r.role_id = rp.role_id JOIN user_roles ur ON ur.role_id = r.role_id JOIN users u ON u.user_id = ur.user_id
                WHERE u.name = ? AND r.workspace = ?
                """, [user, user, RoleRules.defaultWorkspace]) {
                let type: String = row[0], pattern: String = row[1]
                guard let permission = Permission(rawValue: row[2]) else { continue }
                if type == "workspace" {
                    if pattern == "*" && permission == .manage { set.isWorkspaceAdmin = true }
                } else if let resourceType = ResourceType(rawValue: type) {
                    set.add(resourceType, pattern: pattern, permission)
                }
            }
            return set
        }
    }
}
