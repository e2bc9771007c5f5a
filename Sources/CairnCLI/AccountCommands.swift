import ArgumentParser
import CairnClient
import CairnCore
import CairnServer
import CairnServices
import Foundation

/// `cairn users …`: accounts, made and changed directly in the store (like `cairn gc`), so the
/// first administrator can be created before anybody can sign in.
struct UsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users",
        abstract: "Create, list and change the accounts of a server started with --auth (directly in its store).",
        discussion: """
            These commands open the server's store (the same --data-dir or --backend-store-uri as `cairn server`); they work while the server runs. Passwords are read from standard input when it is not a terminal, else asked for twice without echo. There is no default password.

            Example:

              cairn users create alice --admin
              echo "$BOB_PASSWORD" | cairn users create bob
              cairn users list
            """,
        subcommands: [UsersCreateCommand.self, UsersListCommand.self, UsersSetAdminCommand.self, UsersPasswordCommand.self, UsersDeleteCommand.self])
}

/// The account service over the store the options name (made when `creating` and missing).
func openAccounts(_ store: StoreOptions, creating: Bool = false) throws -> AccountService {
    try store.openServices(creating: creating).accounts
}

/// A password from standard input (one line) when it is not a terminal, else asked for twice
/// without echo.
func readNewPassword(for user: String) throws -> String {
    if isatty(STDIN_FILENO) == 0 {
        guard let line = readLine(strippingNewline: true), !line.isEmpty else {
            throw fail("No password on standard input. Pipe it in (echo \"$PASSWORD\" | cairn users create \(user)) or run the command in a terminal.")
        }
        return line
    }
    guard let first = getpass("Password for \(user): ").map({ String(cString: $0) }), !first.isEmpty else {
        throw fail("No password given.")
    }
    guard let second = getpass("Again: ").map({ String(cString: $0) }), second == first else {
        throw fail("The two passwords differ; nothing was changed.")
    }
    return first
}

/// Runs an account change, turning `CairnError`s into one readable line.
func withAccountErrors<T>(_ body: () async throws -> T) async throws -> T {
    do { return try await body() } catch let error as CairnError { throw fail(error.message) }
}


struct UsersCreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create an account (the password is read from standard input or asked for).",
        discussion: "Example:\n\n  cairn users create alice --admin")

    @Argument(help: "The user name.") var name: String
    @Flag(help: "Make the user an administrator (may do everything, and manage accounts and permissions).") var admin = false
    @OptionGroup var store: StoreOptions

    func run() async throws {
        let password = try readNewPassword(for: name)
        // Checked before the store is opened: the first administrator is made before the server
        // ever ran, so the store may not exist yet, and a refused name leaves no new store behind.
        try await withAccountErrors {
            try AccountLimits.validateUserName(name)
            try AccountLimits.validatePassword(password)
        }
        let accounts = try openAccounts(store, creating: true)
        let user = try await withAccountErrors { try await accounts.createUser(name: name, password: password, isAdmin: admin) }
        print("Created user \(user.name)\(user.isAdmin ? " (administrator)" : "").")
    }
}

struct UsersListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the accounts.", discussion: "Example:\n\n  cairn users list --json")

    @OptionGroup var store: StoreOptions
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        let users = try await withAccountErrors { try await openAccounts(store).listUsers() }
        if json {
            printJSON(users.map { ["id": $0.id, "username": $0.name, "is_admin": $0.isAdmin, "creation_time": $0.creationTime] as [String: Any] })
            return
        }
        var table = TextTable(["USER", "ADMIN", "CREATED"])
        for user in users { table.add([user.name, user.isAdmin ? "yes" : "", formatTime(user.creationTime)]) }
        print(users.isEmpty ? "No accounts yet: `cairn users create NAME --admin` makes the first administrator." : table.render())
    }
}

struct UsersSetAdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-admin", abstract: "Make a user an administrator, or (--off) no longer one.",
        discussion: "Example:\n\n  cairn users set-admin alice\n  cairn users set-admin bob --off")

    @Argument(help: "The user name.") var name: String
    @Flag(help: "Take the administrator right away instead.") var off = false
    @OptionGroup var store: StoreOptions

    func run() async throws {
        let accounts = try openAccounts(store)
        try await withAccountErrors { try await accounts.updateAdmin(user: name, isAdmin: !off) }
        print(off ? "\(name) is no longer an administrator." : "\(name) is an administrator.")
    }
}

struct UsersPasswordCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-password", abstract: "Set a user's password (read from standard input or asked for).",
        discussion: "Example:\n\n  cairn users set-password alice")

    @Argument(help: "The user name.") var name: String
    @OptionGroup var store: StoreOptions

    func run() async throws {
        let accounts = try openAccounts(store)
        _ = try await withAccountErrors { try await accounts.user(named: name) }
        let password = try readNewPassword(for: name)
        try await withAccountErrors { try await accounts.updatePassword(user: name, password: password, currentPassword: nil) }
        print("Password of \(name) changed.")
    }
}

struct UsersDeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete an account with its tokens and permissions (what it logged stays).",
        discussion: "Example:\n\n  cairn users delete bob")

    @Argument(help: "The user name.") var name: String
    @OptionGroup var store: StoreOptions

    func run() async throws {
        let accounts = try openAccounts(store)
        try await withAccountErrors { try await accounts.deleteUser(name: name) }
        print("Deleted user \(name).")
    }
}

/// `cairn tokens …`: API tokens, through the server, as the signed-in user.
struct TokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens",
        abstract: "Create, list and revoke API tokens on a server with accounts (signed in as MLFLOW_TRACKING_USERNAME).",
        discussion: """
            Sign in with MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or an existing token in MLFLOW_TRACKING_TOKEN). A new token is printed once; only a hash of it is kept. Give it to the mlflow client as MLFLOW_TRACKING_TOKEN.

            Example:

              export MLFLOW_TRACKING_USERNAME=alice MLFLOW_TRACKING_PASSWORD=…
              cairn tokens create --name ci --expires 90d --read-only
              cairn tokens list
              cairn tokens revoke 3f9c2a71d04b8e15
            """,
        subcommands: [TokensCreateCommand.self, TokensListCommand.self, TokensRevokeCommand.self])
}

func jsonBytes(_ value: JSONValue) -> [UInt8] {
    var writer = JSONWriter()
    writer.value(value)
    return writer.bytes
}

func tokenRow(_ token: JSONValue) -> [String] {
    [token["id"]?.stringValue ?? "", token["user"]?.stringValue ?? "", token["name"]?.stringValue ?? "",
     (token["prefix"]?.stringValue ?? "") + "…", token["read_only"]?.boolValue == true ? "read-only" : "read-write",
     token["state"]?.stringValue ?? "", token["expiration_time"]?.int64Value.map(formatTime) ?? "never"]
}

struct TokensCreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create an API token and print it once.",
        discussion: "Example:\n\n  cairn tokens create --name laptop --expires 90d")

    @Option(help: ArgumentHelp("A name to tell the token apart.", valueName: "name")) var name = ""
    @Option(help: ArgumentHelp("Lifetime, e.g. 90d, 12h (default: until revoked).", valueName: "duration")) var expires: String?
    @Flag(name: .customLong("read-only"), help: "The token may only read, whatever its user may do.") var readOnly = false
    @Option(help: ArgumentHelp("Another user's token (administrators only).", valueName: "user")) var user: String?
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        var body: [(String, JSONValue)] = [("name", .string(name)), ("read_only", .bool(readOnly))]
        if let expires {
            guard let millis = StaleRuns.parseDuration(expires), millis >= 1000 else {
                throw fail("--expires '\(expires)' is not a duration. Write it like 90d or 12h.")
            }
            body.append(("expires_in_seconds", .number(String(millis / 1000))))
        }
        if let user { body.append(("user", .string(user))) }
        let reply = try await withClientErrors("Creating a token") {
            try await client.makeClient().call("POST", "/api/cairn/v1/tokens", body: jsonBytes(.object(body)))
        }
        if json { print(String(decoding: jsonBytes(reply), as: UTF8.self)); return }
        let token = reply["token"] ?? .object([])
        print("""
            Token \(token["id"]?.stringValue ?? "") for \(token["user"]?.stringValue ?? "")\(readOnly ? " (read-only)" : "")\(token["expiration_time"]?.int64Value.map { ", expires " + formatTime($0) } ?? ""):

              \(reply["secret"]?.stringValue ?? "")

            It is shown this once. Use it with: export MLFLOW_TRACKING_TOKEN=<token>
            """)
    }
}

struct TokensListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List your tokens (administrators: --all or --user), without their secrets.",
        discussion: "Example:\n\n  cairn tokens list")

    @Flag(help: "Every user's tokens (administrators only).") var all = false
    @Option(help: ArgumentHelp("This user's tokens (administrators only, or yourself).", valueName: "user")) var user: String?
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        var query: [(String, String)] = []
        if all { query.append(("all", "true")) }
        if let user { query.append(("user", user)) }
        let reply = try await withClientErrors("Listing tokens") { try await client.makeClient().call("GET", "/api/cairn/v1/tokens", query: query) }
        if json { print(String(decoding: jsonBytes(reply), as: UTF8.self)); return }
        var table = TextTable(["ID", "USER", "NAME", "PREFIX", "ACCESS", "STATE", "EXPIRES"])
        for token in reply["tokens"]?.arrayValue ?? [] { table.add(tokenRow(token)) }
        print(table.rows.isEmpty ? "No tokens." : table.render())
    }
}

struct TokensRevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke", abstract: "Revoke a token: it stops working at once on this server, within a minute on other replicas.",
        discussion: "Example:\n\n  cairn tokens revoke 3f9c2a71d04b8e15")

    @Argument(help: "The token's id (from `cairn tokens list`).") var id: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        _ = try await withClientErrors("Revoking the token") {
            try await client.makeClient().call("POST", "/api/cairn/v1/tokens/revoke", body: jsonBytes(.object([("id", .string(id))])))
        }
        print("Revoked token \(id).")
    }
}
