import CairnCore
import CairnServices
import Hummingbird

/// MLflow's auth REST API, as `mlflow.server.get_app_client("basic-auth", …)` (the
/// `AuthServiceClient` of mlflow 3.17.2) calls it: users under `/api/2.0/mlflow/users/…`,
/// per-user grants under `/api/3.0/mlflow/users/permissions/…`; and Cairn's API tokens under
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

    private func listUsers(_ f: RequestFields) async throws -> [UInt8] {
        try access.requireAdmin()
        let users = try await accounts.listUsers()
        return WireEncoding.reply { o in
            o.array("users", users) { w, user in
                w.object { x in
                    userJSON(&x, user)
                    x.array("roles", [String]()) { w, _ in w.string("") }
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
        try await accounts.setGrant(PermissionGrant(user: user, resourceType: type, resourceID: id, permission: level))
        return WireEncoding.empty
    }

    private func revoke(_ f: RequestFields) async throws -> [UInt8] {
        let user = try f.requiredString("username")
        let (type, id) = try resource(f)
        try await access.require(.manage, on: type, id: id)
        _ = try await accounts.user(named: user)
        if try await !accounts.removeGrant(user: user, on: type, id: id) {
            throw CairnError.notFound("No permission of '\(user)' on \(type.rawValue) '\(id)' to revoke.")
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

    private func permissionsReply(_ user: UserAccount) async throws -> [UInt8] {
        let grants = try await accounts.store.listPermissions(user: user.name)
        return WireEncoding.reply { o in
            o.bool("is_admin", user.isAdmin)
            o.array("permissions", grants) { w, grant in
                w.object { x in
                    // MLflow keeps direct grants in a role of the user's own, `__user_<id>__`.
                    x.int("role_id", user.id)
                    x.string("role_name", "__user_\(user.id)__")
                    x.string("workspace", "default")
                    x.string("resource_type", grant.resourceType.rawValue)
                    x.string("resource_pattern", grant.resourceID)
                    x.string("permission", grant.permission.rawValue)
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
