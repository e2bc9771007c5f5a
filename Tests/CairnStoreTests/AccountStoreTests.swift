import CairnCore
import CairnTestSupport
import Foundation
import Testing
@testable import CairnStore

@Suite("Account store")
struct AccountStoreTests {
    @Test("Users are created once, listed, changed and deleted with their tokens and grants", arguments: StoreBackend.allCases)
    func users(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let alice = try await store.createUser(name: "alice", passwordHash: "h1", isAdmin: true, now: 1)
            _ = try await store.createUser(name: "bob", passwordHash: "h2", isAdmin: false, now: 2)
            await #expect(throws: CairnError.self) { _ = try await store.createUser(name: "alice", passwordHash: "x", isAdmin: false, now: 3) }
            #expect(try await store.listUsers().map(\.name) == ["alice", "bob"])
            #expect(try await store.fetchCredentials(name: "alice")?.passwordHash == "h1")
            #expect(try await store.fetchUser(name: "alice") == alice)
            #expect(try await store.countAdmins() == 1)

            try await store.updateUser(name: "bob", passwordHash: "h3", isAdmin: true, now: 9)
            #expect(try await store.fetchCredentials(name: "bob")?.passwordHash == "h3")
            #expect(try await store.fetchUser(name: "bob")?.lastUpdateTime == 9)
            #expect(try await store.countAdmins() == 2)

            try await store.setPermission(PermissionGrant(user: "bob", resourceType: .experiment, resourceID: "1", permission: .read))
            try await store.createToken(APIToken(id: "t1", user: "bob", name: "ci", prefix: "cairn_ab", isReadOnly: false, creationTime: 1,
                                                 expirationTime: nil, revocationTime: nil, lastUsedTime: nil), secretSHA256: "digest")
            try await store.deleteUser(name: "bob")
            #expect(try await store.fetchUser(name: "bob") == nil)
            #expect(try await store.fetchToken(secretSHA256: "digest") == nil)
            await #expect(throws: CairnError.self) { try await store.deleteUser(name: "bob") }
            // The name is free again, with no grant left over.
            _ = try await store.createUser(name: "bob", passwordHash: "h4", isAdmin: false, now: 10)
            #expect(try await store.listPermissions(user: "bob").isEmpty)
        }
    }

    @Test("Grants are set, replaced, listed per user and resource, moved with a renamed model and removed", arguments: StoreBackend.allCases)
    func grants(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.createUser(name: "carol", passwordHash: "h", isAdmin: false, now: 1)
            try await store.setPermission(PermissionGrant(user: "carol", resourceType: .experiment, resourceID: "7", permission: .read))
            try await store.setPermission(PermissionGrant(user: "carol", resourceType: .experiment, resourceID: "7", permission: .edit))
            try await store.setPermission(PermissionGrant(user: "carol", resourceType: .registeredModel, resourceID: "m", permission: .manage))
            #expect(try await store.fetchPermission(user: "carol", resourceType: .experiment, resourceID: "7") == .edit)
            #expect(try await store.fetchPermission(user: "carol", resourceType: .experiment, resourceID: "8") == nil)
            #expect(try await store.permissionsByResource(user: "carol", resourceType: .experiment) == ["7": .edit])
            #expect(try await store.listPermissions(user: "carol").map(\.resourceID) == ["7", "m"])

            try await store.renamePermissionResource(resourceType: .registeredModel, from: "m", to: "m2")
            #expect(try await store.fetchPermission(user: "carol", resourceType: .registeredModel, resourceID: "m2") == .manage)
            try await store.removePermissions(resourceType: .registeredModel, resourceID: "m2")
            #expect(try await store.fetchPermission(user: "carol", resourceType: .registeredModel, resourceID: "m2") == nil)
            #expect(try await store.removePermission(user: "carol", resourceType: .experiment, resourceID: "7"))
            #expect(try await !store.removePermission(user: "carol", resourceType: .experiment, resourceID: "7"))
            await #expect(throws: CairnError.self) {
                try await store.setPermission(PermissionGrant(user: "nobody", resourceType: .experiment, resourceID: "1", permission: .read))
            }
        }
    }

    @Test("Tokens are found by the hash of their secret with their owner, revoked once and listed without secrets", arguments: StoreBackend.allCases)
    func tokens(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.createUser(name: "dan", passwordHash: "h", isAdmin: true, now: 1)
            let token = APIToken(id: "t2", user: "dan", name: "laptop", prefix: "cairn_xy", isReadOnly: true, creationTime: 5,
                                 expirationTime: 100, revocationTime: nil, lastUsedTime: nil)
            try await store.createToken(token, secretSHA256: "abc")
            let found = try #require(try await store.fetchToken(secretSHA256: "abc"))
            #expect(found.token == token && found.user.name == "dan" && found.user.isAdmin)
            try await store.markTokenUsed(id: "t2", now: 50)
            #expect(try await store.listTokens(user: "dan").first?.lastUsedTime == 50)
            #expect(try await store.revokeToken(id: "t2", now: 60).revocationTime == 60)
            #expect(try await store.revokeToken(id: "t2", now: 70).revocationTime == 60)
            await #expect(throws: CairnError.self) { _ = try await store.revokeToken(id: "missing", now: 1) }
            #expect(try await store.listTokens(user: nil).map(\.id) == ["t2"])
            #expect(token.isActive(at: 99) && !token.isActive(at: 100))
        }
    }
}
