/// Who a request comes from, for the rules that depend on it (permissions) and for the audit
/// log: set once per request by the server (after authentication, when auth is on) and by the
/// CLI commands that change a store directly, read by services and by the store's write path.
/// A task-local, so it follows the request through every `await` without being passed down
/// each call.
public struct RequestIdentity: Sendable, Equatable {
    /// The signed-in user's name; nil when nobody signed in (auth off, or an anonymous request).
    public var user: String?
    /// True when `user` was proven (password or token), false when it is only what a client or
    /// the operating system claims (auth off).
    public var isAuthenticated: Bool
    /// An administrator may do everything.
    public var isAdmin: Bool
    /// The peer's address as the server saw it (`127.0.0.1`), or `local` for a CLI command.
    public var clientAddress: String
    /// The server's id of the request (also in its log lines and 500 replies), or a CLI
    /// command's own id.
    public var requestID: String
    /// Signed in with a read-only API token: no permission above READ, whatever the grants.
    public var isReadOnly: Bool

    public init(user: String?, isAuthenticated: Bool, isAdmin: Bool, clientAddress: String, requestID: String, isReadOnly: Bool = false) {
        self.user = user
        self.isAuthenticated = isAuthenticated
        self.isAdmin = isAdmin
        self.clientAddress = clientAddress
        self.requestID = requestID
        self.isReadOnly = isReadOnly
    }

    /// The identity of the request being served, if any.
    @TaskLocal public static var current: RequestIdentity?
}
