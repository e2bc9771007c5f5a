import CairnCore
import CairnServices

/// `GET /api/cairn/v1/permissions?experiment_ids=…&registered_model_names=…`: the caller's
/// effective level on each experiment and registered model named, so the web UI shows only the
/// buttons that would succeed. The rule lives in `AccessControl.effectivePermissions`; the UI
/// only compares levels. Answers `{"auth", "user", "admin", "read_only", "can_create",
/// "experiments": {id: level}, "registered_models": {name: level}}`.
struct CairnPermissionsAPI: Sendable {
    let access: AccessControl

    var endpoints: [MLflowEndpoint] {
        [MLflowEndpoint(methods: ["GET"], path: "permissions", handler: permissions)]
    }

    func permissions(_ f: RequestFields) async throws -> [UInt8] {
        let levels = try await access.effectivePermissions(experimentIDs: f.strings("experiment_ids"), registeredModels: f.strings("registered_model_names"))
        return WireEncoding.reply { o in
            o.bool("auth", levels.accountsEnabled)
            if let user = levels.user { o.string("user", user) }
            o.bool("admin", levels.isAdmin)
            o.bool("read_only", levels.isReadOnly)
            o.bool("can_create", levels.canCreate)
            o.object("experiments") { x in for (id, level) in levels.experiments { x.string(id, level.rawValue) } }
            o.object("registered_models") { x in for (name, level) in levels.registeredModels { x.string(name, level.rawValue) } }
        }
    }
}
