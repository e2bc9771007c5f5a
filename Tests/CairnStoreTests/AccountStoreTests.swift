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

    @Test("Roles are made once per workspace, hold grants, are given to users, fold into a user's grants and go with them", arguments: StoreBackend.allCases)
    func roles(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let dana = try await store.createUser(name: "dana", passwordHash: "h", isAdmin: false, now: 1)
            let readers = try await store.createRole(workspace: "default", name: "readers", description: nil, now: 2)
            await #expect(throws: CairnError.self) { _ = try await store.createRole(workspace: "default", name: "readers", description: "x", now: 3) }
            let elsewhere = try await store.createRole(workspace: "other", name: "readers", description: "d", now: 3)
            let all = try await store.addRolePermission(roleID: readers.id, resourceType: "experiment", pattern: "*", permission: .read)
            _ = try await store.addRolePermission(roleID: readers.id, resourceType: "experiment", pattern: "7", permission: .deny)
            _ = try await store.addRolePermission(roleID: readers.id, resourceType: "registered_model", pattern: "m", permission: .edit)
            await #expect(throws: CairnError.self) {
                _ = try await store.addRolePermission(roleID: readers.id, resourceType: "experiment", pattern: "*", permission: .edit)
            }
            _ = try await store.addRolePermission(roleID: elsewhere.id, resourceType: "experiment", pattern: "*", permission: .manage)
            #expect(try await store.fetchRole(id: readers.id).permissions.count == 3)
            #expect(try await store.listRoles(workspaces: ["default"]).map(\.id) == [readers.id])
            #expect(try await store.listRoles(workspaces: nil).count == 2)

            let assignment = try await store.assignRole(user: "dana", roleID: readers.id)
            #expect(assignment.userID == dana.id)
            await #expect(throws: CairnError.self) { _ = try await store.assignRole(user: "dana", roleID: readers.id) }
            _ = try await store.assignRole(user: "dana", roleID: elsewhere.id)
            try await store.setPermission(PermissionGrant(user: "dana", resourceType: .experiment, resourceID: "7", permission: .manage))
            // Roles of another workspace grant nothing; a DENY wins over a direct MANAGE.
            let grants = try await store.grantSet(user: "dana")
            #expect(grants.granted(.experiment, id: "7") == .deny)
            #expect(grants.granted(.experiment, id: "8") == .read)
            #expect(grants.granted(.registeredModel, id: "m") == .edit)
            #expect(grants.granted(.registeredModel, id: "n") == nil)
            #expect(!grants.isWorkspaceAdmin)

            #expect(try await store.updateRolePermission(id: all.id, permission: .edit).permission == .edit)
            #expect(try await store.grantSet(user: "dana").granted(.experiment, id: "8") == .edit)
            try await store.renamePermissionResource(resourceType: .registeredModel, from: "m", to: "m2")
            #expect(try await store.grantSet(user: "dana").granted(.registeredModel, id: "m2") == .edit)
            #expect(try await store.updateRole(id: readers.id, name: "viewers", description: "all").name == "viewers")
            #expect(try await store.listUserRoles(user: "dana").map(\.name) == ["viewers", "readers"])
            #expect(try await store.listRoleUsers(roleID: readers.id).map(\.userID) == [dana.id])

            try await store.unassignRole(user: "dana", roleID: elsewhere.id)
            await #expect(throws: CairnError.self) { try await store.unassignRole(user: "dana", roleID: elsewhere.id) }
            try await store.deleteUser(name: "dana")
            #expect(try await store.listRoleUsers(roleID: readers.id).isEmpty)
            try await store.deleteRole(id: readers.id)
            await #expect(throws: CairnError.self) { _ = try await store.fetchRole(id: readers.id) }
            await #expect(throws: CairnError.self) { try await store.removeRolePermission(id: all.id) }
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
