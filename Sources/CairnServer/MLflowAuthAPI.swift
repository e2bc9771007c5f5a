import CairnCore
import CairnServices
import Hummingbird

/// MLflow's auth REST API, as `mlflow.server.get_app_client("basic-auth", …)` (the
/// `AuthServiceClient` of mlflow 3.17.2) calls it: users under `/api/2.0/mlflow/users/…`,
/// per-user grants under `/api/3.0/mlflow/users/permissions/…`, roles under
/// `/api/3.0/mlflow/roles/…`; and Cairn's API tokens under
/// `/api/cairn/v1/tokens`. Each endpoint checks who may call it and calls `AccountService`.
/// With accounts off they answer `ENDPOINT_NOT_FOUND`, as MLflow without its auth app does.
struct MLflowAuthAPI: Sendable {
    let access: AccessControl
    var accounts: AccountService { access.accounts }

    func register(on router: Router<CairnRequestContext>) {
        let v2: [(String, String, @Sendable (RequestFields) async throws -> [UInt8])] = [
            ("POST", "users/create", createUser),
            ("GET", "users/get", getUser),
            ("GET", "users/current", currentUser),
            ("GET", "users/list", listUsers),
            ("PATCH", "users/update-password", updatePassword),
            ("PATCH", "users/update-admin", updateAdmin),
            ("DELETE", "users/delete", deleteUser),
        ]
        let v3: [(String, String, @Sendable (RequestFields) async throws -> [UInt8])] = [
            ("POST", "users/permissions/grant", grant),
            ("POST", "users/permissions/revoke", revoke),
            ("GET", "users/permissions/get", getPermission),
            ("GET", "users/permissions/list", listPermissions),
            ("GET", "users/current/permissions", currentPermissions),
            ("POST", "roles/create", createRole),
            ("GET", "roles/get", getRole),
            ("GET", "roles/list", listRoles),
            ("PATCH", "roles/update", updateRole),
            ("DELETE", "roles/delete", deleteRole),
            ("POST", "roles/permissions/add", addRolePermission),
            ("DELETE", "roles/permissions/remove", removeRolePermission),
            ("GET", "roles/permissions/list", listRolePermissions),
            ("PATCH", "roles/permissions/update", updateRolePermission),
            ("POST", "roles/assign", assignRole),
            ("DELETE", "roles/unassign", unassignRole),
            ("GET", "users/roles/list", listUserRoles),
            ("GET", "roles/users/list", listRoleUsers),
        ]
        for (prefixes, endpoints) in [(["api/2.0/mlflow", "ajax-api/2.0/mlflow"], v2), (["api/3.0/mlflow", "ajax-api/3.0/mlflow"], v3)] {
            for prefix in prefixes {
                for (method, path, handler) in endpoints {
                    router.on(RouterPath(prefix + "/" + path), method: HTTPRequest.Method(method)!) { request, _ in
                        try await run(request, handler)
                    }
                }
            }
        }
        router.post("api/cairn/v1/tokens") { request, _ in try await run(request, createToken) }
        router.get("api/cairn/v1/tokens") { request, _ in try await run(request, listTokens) }
        router.post("api/cairn/v1/tokens/revoke") { request, _ in try await run(request, revokeToken) }
    }

    private func run(_ request: Request, _ handler: @Sendable (RequestFields) async throws -> [UInt8]) async throws -> Response {
        try WebSession.requireAccounts(accounts)
        _ = try access.signedInCaller()
        return jsonResponse(try await handler(try await decodeFields(request)))
    }

    // MARK: - Users

    private func userJSON(_ o: inout JSONObjectBuilder, _ user: UserAccount) {
        o.int("id", user.id)
        o.string("username", user.name)
        o.bool("is_admin", user.isAdmin)
        o.int("creation_time", user.creationTime)
    }

    private func createUser(_ f: RequestFields) async throws -> [UInt8] {
        try access.requireAdmin()
        let name = try f.string("username") ?? ""
        let password = try f.string("password") ?? ""
        if name.isEmpty || password.isEmpty { throw CairnError.invalidParameter("Username and password cannot be empty.") }
        let user = try await accounts.createUser(name: name, password: password)
        return WireEncoding.reply { o in o.object("user") { userJSON(&$0, user) } }
    }

    private func getUser(_ f: RequestFields) async throws -> [UInt8] {
        let name = try f.requiredString("username")
        try access.requireSelfOrAdmin(name)
        let user = try await accounts.user(named: name)
        return WireEncoding.reply { o in o.object("user") { userJSON(&$0, user) } }
    }

    private func currentUser(_ f: RequestFields) async throws -> [UInt8] {
        let user = try await accounts.user(named: try access.signedInCaller())
        return WireEncoding.reply { o in
            o.object("user") { userJSON(&$0, user) }
            o.bool("is_basic_auth", true)
        }
    }

    /// Every user; with their roles for an administrator, with none shown to anyone else (as
    /// MLflow answers).
    private func listUsers(_ f: RequestFields) async throws -> [UInt8] {
        let isAdmin = RequestIdentity.current?.isAdmin == true
        let users = try await accounts.listUsers()
        var roles: [Int64: [Role]] = [:]
        if isAdmin {
            for user in users { roles[user.id] = try await accounts.store.listUserRoles(user: user.name) }
        }
        return WireEncoding.reply { o in
            o.list("users", users) { w, user in
                w.object { x in
                    userJSON(&x, user)
                    x.list("roles", roles[user.id] ?? []) { w, role in w.object { Self.roleJSON(&$0, role) } }
                }
            }
        }
    }

    private func updatePassword(_ f: RequestFields) async throws -> [UInt8] {
        let name = try f.requiredString("username")
        try access.requireSelfOrAdmin(name)
        try await accounts.updatePassword(user: name, password: try f.requiredString("password"), currentPassword: try f.string("current_password"))
        return WireEncoding.empty
    }

    private func updateAdmin(_ f: RequestFields) async throws -> [UInt8] {
        try access.requireAdmin()
        guard let isAdmin = try f.bool("is_admin") else { throw CairnError.missingParameter("is_admin") }
        try await accounts.updateAdmin(user: try f.requiredString("username"), isAdmin: isAdmin)
        return WireEncoding.empty
    }

    private func deleteUser(_ f: RequestFields) async throws -> [UInt8] {
        try access.requireAdmin()
        try await accounts.deleteUser(name: try f.requiredString("username"))
        return WireEncoding.empty
    }

    // MARK: - Grants

    private func resource(_ f: RequestFields) throws -> (ResourceType, String) {
        let type = try ResourceType.parse(try f.requiredString("resource_type"))
        return (type, try f.requiredString("resource_id"))
    }

    private func grant(_ f: RequestFields) async throws -> [UInt8] {
        let user = try f.requiredString("username")
        let (type, id) = try resource(f)
        let level = try Permission.parse(try f.requiredString("permission"))
        try await access.require(.manage, on: type, id: id)
        _ = try await accounts.user(named: user)
        if try await accounts.store.fetchPermission(user: user, resourceType: type, resourceID: id) != nil {
            throw CairnError.alreadyExists("Permission for user=\(user) on resource_type=\(type.rawValue), resource_id=\(id) already exists.")
        }
        try await accounts.setGrant(PermissionGrant(user: user, resourceType: type, resourceID: id, permission: level))
        return WireEncoding.empty
    }

    private func revoke(_ f: RequestFields) async throws -> [UInt8] {
        let user = try f.requiredString("username")
        let (type, id) = try resource(f)
        try await access.require(.manage, on: type, id: id)
        _ = try await accounts.user(named: user)
        if try await !accounts.removeGrant(user: user, on: type, id: id) {
            throw CairnError.notFound("Permission for user=\(user) on resource_type=\(type.rawValue), resource_id=\(id) not found.")
        }
        return WireEncoding.empty
    }

    private func getPermission(_ f: RequestFields) async throws -> [UInt8] {
        let user = try f.requiredString("username")
        let (type, id) = try resource(f)
        try access.requireSelfOrAdmin(user)
        let level = try await access.permission(of: user, on: type, id: id)
        return WireEncoding.reply { o in
            o.bool("allowed", level.canUse)
            o.string("permission", level.rawValue)
        }
    }

    /// A user's grants: direct ones first, then those of each of their roles.
    private func permissionsReply(_ user: UserAccount) async throws -> [UInt8] {
        let grants = try await accounts.store.listPermissions(user: user.name)
        let roles = try await accounts.store.listUserRoles(user: user.name)
        // MLflow keeps direct grants in a role of the user's own, `__user_<id>__`; Cairn keeps
        // them apart and names them the same way (the id is the user's).
        let rows: [(roleID: Int64, roleName: String, workspace: String, type: String, pattern: String, level: Permission)] =
            grants.map { (user.id, "__user_\(user.id)__", RoleRules.defaultWorkspace, $0.resourceType.rawValue, $0.resourceID, $0.permission) }
            + roles.flatMap { role in role.permissions.map { (role.id, role.name, role.workspace, $0.resourceType, $0.resourcePattern, $0.permission) } }
        return WireEncoding.reply { o in
            o.bool("is_admin", user.isAdmin)
            o.list("permissions", rows) { w, r in
                w.object { x in
                    x.string("permission", r.level.rawValue)
                    x.string("resource_pattern", r.pattern)
                    x.string("resource_type", r.type)
                    x.int("role_id", r.roleID)
                    x.string("role_name", r.roleName)
                    x.string("workspace", r.workspace)
                }
            }
        }
    }

    private func listPermissions(_ f: RequestFields) async throws -> [UInt8] {
        let name = try f.requiredString("username")
        try access.requireSelfOrAdmin(name)
        return try await permissionsReply(try await accounts.user(named: name))
    }

    private func currentPermissions(_ f: RequestFields) async throws -> [UInt8] {
        try await permissionsReply(try await accounts.user(named: try access.signedInCaller()))
    }

    // MARK: - Roles

    static func roleJSON(_ o: inout JSONObjectBuilder, _ role: Role) {
        if let description = role.description { o.string("description", description) } else { o.null("description") }
        o.int("id", role.id)
        o.string("name", role.name)
        o.list("permissions", role.permissions) { w, grant in w.object { rolePermissionJSON(&$0, grant) } }
        o.string("workspace", role.workspace)
    }

    static func rolePermissionJSON(_ o: inout JSONObjectBuilder, _ grant: RolePermission) {
        o.int("id", grant.id)
        o.string("permission", grant.permission.rawValue)
        o.string("resource_pattern", grant.resourcePattern)
        o.string("resource_type", grant.resourceType)
        o.int("role_id", grant.roleID)
    }

    /// An integer id parameter, with MLflow's message when it is not one.
    private func id(_ f: RequestFields, _ name: String) throws -> Int64 {
        guard let value = f.json(name) else { throw CairnError.missingParameter(name) }
        let text: String
        switch value {
        case .string(let s): text = s
        case .number(let n): text = n
        default: text = String(describing: value)
        }
        guard let id = Int64(text) else { throw CairnError.invalidParameter("Parameter '\(name)' must be an integer. Got: '\(text)'") }
        return id
    }

    /// The workspace of the role a request names (by `role_id` or `role_permission_id`), nil
    /// when it does not exist.
    private func workspace(ofRole roleID: Int64) async -> String? {
        try? await accounts.store.fetchRole(id: roleID).workspace
    }

    private func roleReply(_ role: Role) -> [UInt8] {
        WireEncoding.reply { o in o.object("role") { Self.roleJSON(&$0, role) } }
    }

    private func createRole(_ f: RequestFields) async throws -> [UInt8] {
        let workspace = try f.string("workspace") ?? ""
        try await access.requireRoleManager(workspace: workspace)
        return roleReply(try await accounts.createRole(workspace: workspace, name: try f.string("name") ?? "", description: try f.string("description")))
    }

    private func getRole(_ f: RequestFields) async throws -> [UInt8] {
        let roleID = try id(f, "role_id")
        try await access.requireRoleViewer(workspace: await workspace(ofRole: roleID))
        return roleReply(try await accounts.store.fetchRole(id: roleID))
    }

    /// The roles of the `workspace`s asked for (repeatable), or of every workspace for an
    /// administrator.
    private func listRoles(_ f: RequestFields) async throws -> [UInt8] {
        let workspaces = try f.strings("workspace")
        if workspaces.contains(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            throw CairnError.invalidParameter("Parameter 'workspace' must be a non-empty string when provided.")
        }
        if workspaces.isEmpty { try access.requireAdmin() }
        for workspace in Set(workspaces) { try await access.requireRoleViewer(workspace: workspace) }
        let roles = try await accounts.store.listRoles(workspaces: workspaces.isEmpty ? nil : workspaces)
        return WireEncoding.reply { o in o.list("roles", roles) { w, role in w.object { Self.roleJSON(&$0, role) } } }
    }

    private func updateRole(_ f: RequestFields) async throws -> [UInt8] {
        let roleID = try id(f, "role_id")
        try await access.requireRoleManager(workspace: await workspace(ofRole: roleID))
        return roleReply(try await accounts.updateRole(id: roleID, name: try f.string("name"), description: try f.string("description")))
    }

    private func deleteRole(_ f: RequestFields) async throws -> [UInt8] {
        let roleID = try id(f, "role_id")
        try await access.requireRoleManager(workspace: await workspace(ofRole: roleID))
        try await accounts.deleteRole(id: roleID)
        return WireEncoding.empty
    }

    private func addRolePermission(_ f: RequestFields) async throws -> [UInt8] {
        let roleID = try id(f, "role_id")
        try await access.requireRoleManager(workspace: await workspace(ofRole: roleID))
        let grant = try await accounts.addRolePermission(roleID: roleID, resourceType: try f.requiredString("resource_type"),
                                                         pattern: try f.requiredString("resource_pattern"),
                                                         permission: try Permission.parse(try f.requiredString("permission")))
        return WireEncoding.reply { o in o.object("role_permission") { Self.rolePermissionJSON(&$0, grant) } }
    }

    /// The workspace of the role a grant belongs to, nil when the grant does not exist.
    private func workspace(ofRolePermission grantID: Int64) async -> String? {
        guard let grant = try? await accounts.store.fetchRolePermission(id: grantID) else { return nil }
        return await workspace(ofRole: grant.roleID)
    }

    private func removeRolePermission(_ f: RequestFields) async throws -> [UInt8] {
        let grantID = try id(f, "role_permission_id")
        try await access.requireRoleManager(workspace: await workspace(ofRolePermission: grantID))
        try await accounts.removeRolePermission(id: grantID)
        return WireEncoding.empty
    }

    private func listRolePermissions(_ f: RequestFields) async throws -> [UInt8] {
        let roleID = try id(f, "role_id")
        try await access.requireRoleViewer(workspace: await workspace(ofRole: roleID))
        let role = try await accounts.store.fetchRole(id: roleID)
        return WireEncoding.reply { o in o.list("role_permissions", role.permissions) { w, grant in w.object { Self.rolePermissionJSON(&$0, grant) } } }
    }

    private func updateRolePermission(_ f: RequestFields) async throws -> [UInt8] {
        let grantID = try id(f, "role_permission_id")
        try await access.requireRoleManager(workspace: await workspace(ofRolePermission: grantID))
        let grant = try await accounts.updateRolePermission(id: grantID, permission: try Permission.parse(try f.requiredString("permission")))
        return WireEncoding.reply { o in o.object("role_permission") { Self.rolePermissionJSON(&$0, grant) } }
    }

    private func assignmentJSON(_ o: inout JSONObjectBuilder, _ assignment: RoleAssignment) {
        o.int("id", assignment.id)
        o.int("role_id", assignment.roleID)
        o.int("user_id", assignment.userID)
    }

    private func assignRole(_ f: RequestFields) async throws -> [UInt8] {
        let roleID = try id(f, "role_id")
        try await access.requireRoleManager(workspace: await workspace(ofRole: roleID))
        let assignment = try await accounts.assignRole(user: try f.requiredString("username"), roleID: roleID)
        return WireEncoding.reply { o in o.object("assignment") { assignmentJSON(&$0, assignment) } }
    }

    private func unassignRole(_ f: RequestFields) async throws -> [UInt8] {
        let roleID = try id(f, "role_id")
        try await access.requireRoleManager(workspace: await workspace(ofRole: roleID))
        try await accounts.unassignRole(user: try f.requiredString("username"), roleID: roleID)
        return WireEncoding.empty
    }

    private func listUserRoles(_ f: RequestFields) async throws -> [UInt8] {
        let name = try f.requiredString("username")
        try access.requireSelfOrAdmin(name)
        let roles = try await accounts.store.listUserRoles(user: name)
        return WireEncoding.reply { o in o.list("roles", roles) { w, role in w.object { Self.roleJSON(&$0, role) } } }
    }

    private func listRoleUsers(_ f: RequestFields) async throws -> [UInt8] {
        let roleID = try id(f, "role_id")
        try await access.requireRoleManager(workspace: await workspace(ofRole: roleID))
        let assignments = try await accounts.store.listRoleUsers(roleID: roleID)
        return WireEncoding.reply { o in o.list("assignments", assignments) { w, a in w.object { assignmentJSON(&$0, a) } } }
    }

    // MARK: - Tokens

    static func tokenJSON(_ o: inout JSONObjectBuilder, _ token: APIToken, now: Int64) {
        o.string("id", token.id)
        o.string("user", token.user)
        o.string("name", token.name)
        o.string("prefix", token.prefix)
        o.bool("read_only", token.isReadOnly)
        o.int("creation_time", token.creationTime)
        if let expiration = token.expirationTime { o.int("expiration_time", expiration) }
        if let revocation = token.revocationTime { o.int("revocation_time", revocation) }
        if let used = token.lastUsedTime { o.int("last_used_time", used) }
        o.string("state", token.revocationTime != nil ? "revoked" : token.isActive(at: now) ? "active" : "expired")
    }

    private func createToken(_ f: RequestFields) async throws -> [UInt8] {
        let caller = try access.signedInCaller()
        let user = try f.string("user") ?? caller
        try access.requireSelfOrAdmin(user)
        if RequestIdentity.current?.isReadOnly == true {
            throw CairnError(.permissionDenied, "Permission denied: a read-only token cannot create tokens.")
        }
        let (token, secret) = try await accounts.createToken(user: user, name: try f.string("name") ?? "",
                                                             expiresAfterMillis: try f.int64("expires_in_seconds").map { $0 * 1000 },
                                                             readOnly: try f.bool("read_only") ?? false)
        return WireEncoding.reply { o in
            o.object("token") { Self.tokenJSON(&$0, token, now: accounts.now()) }
            o.string("secret", secret)
        }
    }

    private func listTokens(_ f: RequestFields) async throws -> [UInt8] {
        let caller = try access.signedInCaller()
        let all = try f.bool("all") ?? false
        let user = try f.string("user") ?? (all ? nil : caller)
        if let user { try access.requireSelfOrAdmin(user) } else { try access.requireAdmin() }
        let tokens = try await accounts.listTokens(user: user)
        let now = accounts.now()
        return WireEncoding.reply { o in
            o.array("tokens", tokens) { w, token in w.object { Self.tokenJSON(&$0, token, now: now) } }
        }
    }

    private func revokeToken(_ f: RequestFields) async throws -> [UInt8] {
        let token = try await accounts.revokeToken(id: try f.requiredString("id"))
        return WireEncoding.reply { o in o.object("token") { Self.tokenJSON(&$0, token, now: accounts.now()) } }
    }
}
