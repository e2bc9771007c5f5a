/// Accounts, API tokens, per-resource permissions and roles, with MLflow's auth semantics: the
/// levels the `mlflow` auth client sends (`READ`, `USE`, `EDIT`, `MANAGE`, `DENY`,
/// `NO_PERMISSIONS`), on the resource types `experiment` and `registered_model`, granted to a
/// user directly or through roles (named sets of grants, MLflow 3's RBAC).

/// A permission level on one resource. Each level includes the ones below it; `DENY` and
/// `NO_PERMISSIONS` allow nothing (`DENY` is an explicit refusal that a default cannot lift).
public enum Permission: String, Sendable, Codable, CaseIterable {
    case read = "READ"
    case use = "USE"
    case edit = "EDIT"
    case manage = "MANAGE"
    case deny = "DENY"
    case noPermissions = "NO_PERMISSIONS"

    /// 0 for none, then READ < USE < EDIT < MANAGE.
    public var rank: Int {
        switch self {
        case .deny, .noPermissions: 0
        case .read: 1
        case .use: 2
        case .edit: 3
        case .manage: 4
        }
    }

    public var canRead: Bool { rank >= 1 }
    public var canUse: Bool { rank >= 2 }
    public var canUpdate: Bool { rank >= 3 }
    public var canDelete: Bool { rank >= 4 }
    public var canManage: Bool { rank >= 4 }

    /// True when this level allows what `needed` asks for.
    public func allows(_ needed: Permission) -> Bool { rank >= needed.rank && needed.rank > 0 }

    /// The level named `text` (case-insensitive), or an `INVALID_PARAMETER_VALUE` naming the
    /// accepted ones.
    public static func parse(_ text: String) throws -> Permission {
        if let level = Permission(rawValue: text.uppercased()) { return level }
        throw CairnError.invalidParameter("Invalid permission '\(text)'. Valid permissions are: ('READ', 'USE', 'EDIT', 'MANAGE', 'NO_PERMISSIONS', 'DENY')")
    }

    /// Several grants that apply to one resource, folded as MLflow folds them: an explicit
    /// `DENY` wins over every positive grant; otherwise the highest level. Nil when there is
    /// no grant at all.
    public static func fold(_ grants: some Sequence<Permission>) -> Permission? {
        var best: Permission?
        for grant in grants {
            if grant == .deny { return .deny }
            if best == nil || grant.rank > best!.rank { best = grant }
        }
        return best
    }

    /// What a user may do given what was granted (nil: nothing) and the server's default
    /// permission: the default where nothing was granted, and never less than the default for
    /// a positive grant; `DENY` and `NO_PERMISSIONS` stay as granted (a default never lifts a
    /// refusal).
    public static func effective(granted: Permission?, default fallback: Permission) -> Permission {
        guard let granted else { return fallback }
        if granted == .deny || granted == .noPermissions { return granted }
        return fallback.rank > granted.rank ? fallback : granted
    }
}

/// What a permission is granted on.
public enum ResourceType: String, Sendable, Codable, CaseIterable {
    case experiment
    case registeredModel = "registered_model"

    public static func parse(_ text: String) throws -> ResourceType {
        if let type = ResourceType(rawValue: text.lowercased()) { return type }
        throw CairnError.invalidParameter("Invalid resource_type '\(text)'. Valid resource types are: experiment, registered_model.")
    }
}

/// Every grant of one user that can decide their access (direct grants and those of their roles
/// in the default workspace), by resource type: per resource id, and for every resource
/// (`*`). A role granting `MANAGE` on the workspace makes the user its administrator.
public struct GrantSet: Sendable, Equatable {
    public var isWorkspaceAdmin: Bool
    public var exact: [ResourceType: [String: [Permission]]]
    public var wildcard: [ResourceType: [Permission]]

    public init(isWorkspaceAdmin: Bool = false, exact: [ResourceType: [String: [Permission]]] = [:], wildcard: [ResourceType: [Permission]] = [:]) {
        self.isWorkspaceAdmin = isWorkspaceAdmin
        self.exact = exact
        self.wildcard = wildcard
    }

    /// Adds one grant (`pattern` is a resource id or `*`).
    public mutating func add(_ type: ResourceType, pattern: String, _ permission: Permission) {
        if pattern == "*" {
            wildcard[type, default: []].append(permission)
        } else {
            exact[type, default: [:]][pattern, default: []].append(permission)
        }
    }

    /// The folded grant on one resource, nil when nothing was granted on it.
    public func granted(_ type: ResourceType, id: String) -> Permission? {
        if isWorkspaceAdmin { return .manage }
        return Permission.fold((exact[type]?[id] ?? []) + (wildcard[type] ?? []))
    }
}

/// MLflow 3's roles: a named set of grants in a workspace, assigned to users. Cairn has one
/// workspace, `default`; roles of other workspaces can be kept (as MLflow keeps them with its
/// workspaces off) but grant nothing.
public enum RoleRules {
    public static let defaultWorkspace = "default"
    /// The resource types a role may grant on: the two of direct grants, and the workspace.
    public static let resourceTypes = ["experiment", "registered_model", "workspace"]
    /// MLflow's other types (prompts, scorers, gateway, sub-resource tiers), which Cairn has no
    /// resources of.
    static let mlflowOnlyTypes = ["assessment", "gateway_endpoint", "gateway_model_definition", "gateway_secret", "logged_model",
                                  "mcp_server", "mcp_server_version", "prompt", "prompt_version", "registered_model_version",
                                  "review_queue", "run", "scorer", "scorer_version", "trace"]

    /// Checks a role grant as MLflow does, with MLflow's messages.
    public static func validate(resourceType: String, pattern: String, permission: Permission) throws {
        if resourceType == "workspace" {
            if pattern != "*" {
                throw CairnError.invalidParameter("Invalid resource_pattern '\(pattern)' for resource_type='workspace'. This resource type supports only wildcard ('*') grants.")
            }
            if permission != .manage && permission != .use {
                throw CairnError.invalidParameter("Invalid permission '\(permission.rawValue)' for resource_type='workspace'. Workspace-wide grants accept only: ('MANAGE', 'USE').")
            }
            return
        }
        if mlflowOnlyTypes.contains(resourceType) {
            throw CairnError.invalidParameter("Resource type '\(resourceType)' is not supported by Cairn, which has no such resources; roles grant on: experiment, registered_model, workspace.")
        }
        guard resourceTypes.contains(resourceType) else {
            throw CairnError.invalidParameter("Invalid resource type '\(resourceType)'. Valid resource types are: ('experiment', 'registered_model', 'workspace')")
        }
        if pattern.isEmpty { throw CairnError.missingParameter("resource_pattern") }
    }
}

/// A role: a named set of grants in a workspace.
public struct Role: Sendable, Equatable {
    public var id: Int64
    public var workspace: String
    public var name: String
    public var description: String?
    public var permissions: [RolePermission]

    public init(id: Int64, workspace: String, name: String, description: String?, permissions: [RolePermission] = []) {
        self.id = id
        self.workspace = workspace
        self.name = name
        self.description = description
        self.permissions = permissions
    }
}

/// One grant of a role: `permission` on the resource `resourcePattern` (an id, a registered
/// model's name, or `*` for all) of `resourceType`.
public struct RolePermission: Sendable, Equatable {
    public var id: Int64
    public var roleID: Int64
    public var resourceType: String
    public var resourcePattern: String
    public var permission: Permission

    public init(id: Int64, roleID: Int64, resourceType: String, resourcePattern: String, permission: Permission) {
        self.id = id
        self.roleID = roleID
        self.resourceType = resourceType
        self.resourcePattern = resourcePattern
        self.permission = permission
    }
}

/// A role given to a user.
public struct RoleAssignment: Sendable, Equatable {
    public var id: Int64
    public var userID: Int64
    public var roleID: Int64

    public init(id: Int64, userID: Int64, roleID: Int64) {
        self.id = id
        self.userID = userID
        self.roleID = roleID
    }
}

/// A user account. The password hash never leaves the store and the account service.
public struct UserAccount: Sendable, Equatable, Codable {
    public var id: Int64
    public var name: String
    public var isAdmin: Bool
    public var creationTime: Int64
    public var lastUpdateTime: Int64

    public init(id: Int64, name: String, isAdmin: Bool, creationTime: Int64, lastUpdateTime: Int64) {
        self.id = id
        self.name = name
        self.isAdmin = isAdmin
        self.creationTime = creationTime
        self.lastUpdateTime = lastUpdateTime
    }
}

/// A permission granted to a user on one resource.
public struct PermissionGrant: Sendable, Equatable, Codable {
    public var user: String
    public var resourceType: ResourceType
    /// An experiment id, or a registered model's name.
    public var resourceID: String
    public var permission: Permission

    public init(user: String, resourceType: ResourceType, resourceID: String, permission: Permission) {
        self.user = user
        self.resourceType = resourceType
        self.resourceID = resourceID
        self.permission = permission
    }
}

/// An API token, without its secret (only a SHA-256 of the secret is stored).
public struct APIToken: Sendable, Equatable, Codable {
    public var id: String
    public var user: String
    public var name: String
    /// The first characters of the secret, so a user can tell tokens apart.
    public var prefix: String
    public var isReadOnly: Bool
    public var creationTime: Int64
    public var expirationTime: Int64?
    public var revocationTime: Int64?
    public var lastUsedTime: Int64?

    public init(id: String, user: String, name: String, prefix: String, isReadOnly: Bool, creationTime: Int64,
                expirationTime: Int64?, revocationTime: Int64?, lastUsedTime: Int64?) {
        self.id = id
        self.user = user
        self.name = name
        self.prefix = prefix
        self.isReadOnly = isReadOnly
        self.creationTime = creationTime
        self.expirationTime = expirationTime
        self.revocationTime = revocationTime
        self.lastUsedTime = lastUsedTime
    }

    /// Usable at `now`: neither revoked nor expired.
    public func isActive(at now: Int64) -> Bool {
        revocationTime == nil && (expirationTime.map { now < $0 } ?? true)
    }
}

/// The limits of account fields.
public enum AccountLimits {
    public static let maxUserNameLength = 256
    public static let minPasswordLength = 12
    /// bcrypt reads at most 72 bytes of a password; longer ones are refused, not cut.
    public static let maxPasswordBytes = 72

    /// Checks a user name: not empty, no more than 256 characters, no control characters and
    /// no `:` (Basic credentials split at the first one).
    public static func validateUserName(_ name: String) throws {
        if name.isEmpty { throw CairnError.invalidParameter("Missing value for required parameter 'username'.") }
        if name.count > maxUserNameLength {
            throw CairnError.invalidParameter("The user name is \(name.count) characters long; at most \(maxUserNameLength) are allowed.")
        }
        if name.contains(":") || name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw CairnError.invalidParameter("The user name '\(name)' contains ':' or a control character; choose a name without them.")
        }
    }

    public static func validatePassword(_ password: String) throws {
        if password.count < minPasswordLength {
            throw CairnError.invalidParameter("Password must be at least \(minPasswordLength) characters.")
        }
        if password.utf8.count > maxPasswordBytes {
            throw CairnError.invalidParameter("The password is longer than \(maxPasswordBytes) bytes, the most bcrypt reads; choose a shorter one.")
        }
    }
}
