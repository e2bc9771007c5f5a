import CairnCore
import CairnStore
import CairnTestSupport
import Foundation
import Synchronization
import Testing
@testable import CairnServices

@Suite("Account service")
struct AccountServiceTests {
    func basic(_ user: String, _ password: String) -> String {
        "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    @Test("Passwords are stored as bcrypt hashes and sign in; wrong ones, unknown users and malformed headers do not")
    func signIn() async throws {
        try await withStore(.sqlite) { store in
            let accounts = AccountService(store: store, settings: AuthSettings(isEnabled: true), bcryptCost: 4)
            _ = try await accounts.createUser(name: "alice", password: "correct horse", isAdmin: true)
            let hash = try #require(try await store.fetchCredentials(name: "alice")?.passwordHash)
            #expect(hash.hasPrefix("$2") && !hash.contains("correct horse"))

            let signedIn = try await accounts.authenticate(authorization: basic("alice", "correct horse"), clientAddress: "a")
            #expect(signedIn == AccountService.SignedIn(user: "alice", isAdmin: true, isReadOnly: false))
            // Remembered: the same credentials again give the same answer.
            #expect(try await accounts.authenticate(authorization: basic("alice", "correct horse"), clientAddress: "a") == signedIn)
            #expect(try await accounts.authenticate(authorization: nil, clientAddress: "a") == nil)
            for header in [basic("alice", "wrong horse"), basic("nobody", "correct horse"), "Basic %%%", "Token abc", "Bearer nope",
                           "Basic " + Data("no-colon".utf8).base64EncodedString(), String(repeating: "B", count: 9000)] {
                await #expect(throws: CairnError.self) { _ = try await accounts.authenticate(authorization: header, clientAddress: "b") }
            }
        }
    }

    @Test("A changed password stops the old one at once on this server")
    func passwordChange() async throws {
        try await withStore(.sqlite) { store in
            let accounts = AccountService(store: store, settings: AuthSettings(isEnabled: true), bcryptCost: 4)
            _ = try await accounts.createUser(name: "bob", password: "first-password")
            _ = try await accounts.authenticate(authorization: basic("bob", "first-password"), clientAddress: "a")
            try await accounts.updatePassword(user: "bob", password: "second-password", currentPassword: nil)
            await #expect(throws: CairnError.self) { _ = try await accounts.authenticate(authorization: basic("bob", "first-password"), clientAddress: "a") }
            #expect(try await accounts.authenticate(authorization: basic("bob", "second-password"), clientAddress: "a")?.user == "bob")
        }
    }

    @Test("Tokens sign in until revoked or expired; read-only tokens are marked so and never admin")
    func tokens() async throws {
        let clock = Mutex<Int64>(1_000)
        try await withStore(.sqlite) { store in
            let accounts = AccountService(store: store, settings: AuthSettings(isEnabled: true), bcryptCost: 4, now: { clock.withLock { $0 } })
            _ = try await accounts.createUser(name: "root", password: "root-password", isAdmin: true)
            let (token, secret) = try await accounts.createToken(user: "root", name: "ci", expiresAfterMillis: 10_000, readOnly: true)
            #expect(secret.hasPrefix("cairn_") && secret.count > 40 && token.prefix == String(secret.prefix(12)))
            let signedIn = try await accounts.authenticate(authorization: "Bearer " + secret, clientAddress: "a")
            #expect(signedIn == AccountService.SignedIn(user: "root", isAdmin: false, isReadOnly: true))
            clock.withLock { $0 = 11_000 }
            let fresh = AccountService(store: store, settings: AuthSettings(isEnabled: true), bcryptCost: 4, now: { clock.withLock { $0 } })
            await #expect(throws: CairnError.self) { _ = try await fresh.authenticate(authorization: "Bearer " + secret, clientAddress: "a") }

            let (other, otherSecret) = try await accounts.createToken(user: "root", name: "", expiresAfterMillis: nil, readOnly: false)
            #expect(try await accounts.authenticate(authorization: "Bearer " + otherSecret, clientAddress: "a")?.isAdmin == true)
            _ = try await accounts.revokeToken(id: other.id)
            await #expect(throws: CairnError.self) { _ = try await accounts.authenticate(authorization: "Bearer " + otherSecret, clientAddress: "a") }
            await #expect(throws: CairnError.self) { _ = try await accounts.createToken(user: "nobody", name: "", expiresAfterMillis: nil, readOnly: false) }
        }
    }

    @Test("Names with ':' or control characters, short passwords and the last administrator's demotion are refused")
    func validation() async throws {
        try await withStore(.sqlite) { store in
            let accounts = AccountService(store: store, settings: AuthSettings(isEnabled: true), bcryptCost: 4)
            await #expect(throws: CairnError.self) { _ = try await accounts.createUser(name: "a:b", password: "long-enough-now") }
            await #expect(throws: CairnError.self) { _ = try await accounts.createUser(name: "a\nb", password: "long-enough-now") }
            await #expect(throws: CairnError.self) { _ = try await accounts.createUser(name: "a", password: "short") }
            await #expect(throws: CairnError.self) { _ = try await accounts.createUser(name: "a", password: String(repeating: "x", count: 73)) }
            _ = try await accounts.createUser(name: "only", password: "long-enough-now", isAdmin: true)
            await #expect(throws: CairnError.self) { try await accounts.updateAdmin(user: "only", isAdmin: false) }
            #expect(try await store.listUsers().map(\.name) == ["only"])
        }
    }

    @Test("Permission levels include the ones below them; DENY and NO_PERMISSIONS allow nothing")
    func levels() throws {
        #expect(Permission.manage.allows(.edit) && Permission.edit.allows(.use) && Permission.use.allows(.read))
        #expect(!Permission.read.allows(.edit) && !Permission.deny.allows(.read) && !Permission.noPermissions.allows(.read))
        #expect(try Permission.parse("edit") == .edit)
        #expect(throws: CairnError.self) { try Permission.parse("ROOT") }
    }
}
