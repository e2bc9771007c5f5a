/// Accounts, API tokens and per-resource permissions, with MLflow's auth semantics: the levels
/// the `mlflow` auth client sends (`READ`, `USE`, `EDIT`, `MANAGE`, `DENY`, `NO_PERMISSIONS`),
/// on the resource types `experiment` and `registered_model`.

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
        throw CairnError.invalidParameter("Invalid permission '\(text)'. Valid permissions are: \(allCases.map(\.rawValue).joined(separator: ", ")).")
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
    public static let minPasswordLength = 8
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
            throw CairnError.invalidParameter("The password is too short: use at least \(minPasswordLength) characters.")
        }
        if password.utf8.count > maxPasswordBytes {
            throw CairnError.invalidParameter("The password is longer than \(maxPasswordBytes) bytes, the most bcrypt reads; choose a shorter one.")
        }
    }
}
