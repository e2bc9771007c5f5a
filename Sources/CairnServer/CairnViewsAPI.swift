import CairnCore
import CairnServices

/// Saved views of an experiment's runs page, under `/api/cairn/v1/experiments/{id}/views`:
/// list (GET), create (POST `{name, state, default}`), get, update (PATCH, fields absent =
/// unchanged) and delete one (`…/views/{view_id}`). `state` is a JSON object sent and
/// answered as text. Each route decodes, calls one `SavedViewService` method and encodes.
struct CairnViewsAPI: Sendable {
    let views: SavedViewService

    var endpoints: [MLflowEndpoint] {
        [
            MLflowEndpoint(methods: ["GET"], path: "experiments/:experiment_id/views", handler: list),
            MLflowEndpoint(methods: ["POST"], path: "experiments/:experiment_id/views", handler: create),
            MLflowEndpoint(methods: ["GET"], path: "experiments/:experiment_id/views/:view_id", handler: get),
            MLflowEndpoint(methods: ["PATCH"], path: "experiments/:experiment_id/views/:view_id", handler: update),
            MLflowEndpoint(methods: ["DELETE"], path: "experiments/:experiment_id/views/:view_id", handler: delete),
        ]
    }

    func list(_ f: RequestFields) async throws -> [UInt8] {
        let views = try await views.listViews(experimentID: f.requiredString("experiment_id"))
        return WireEncoding.reply { o in
            o.key("views")  // also when empty, so the answer always names its list
            o.writer.array(views, Self.view)
        }
    }

    func create(_ f: RequestFields) async throws -> [UInt8] {
        reply(try await views.createView(experimentID: f.requiredString("experiment_id"), name: f.requiredString("name"),
                                         state: f.string("state") ?? "{}", isDefault: f.bool("default")))
    }

    func get(_ f: RequestFields) async throws -> [UInt8] {
        reply(try await views.getView(experimentID: f.requiredString("experiment_id"), viewID: f.requiredString("view_id")))
    }

    func update(_ f: RequestFields) async throws -> [UInt8] {
        let change = SavedViewChange(name: try f.string("name"), state: try f.string("state"), isDefault: try f.bool("default"))
        return reply(try await views.updateView(experimentID: f.requiredString("experiment_id"), viewID: f.requiredString("view_id"), change))
    }

    func delete(_ f: RequestFields) async throws -> [UInt8] {
        try await views.deleteView(experimentID: f.requiredString("experiment_id"), viewID: f.requiredString("view_id"))
        return WireEncoding.empty
    }

    func reply(_ view: SavedView) -> [UInt8] {
        WireEncoding.reply { o in
            o.key("view")
            Self.view(&o.writer, view)
        }
    }

    static func view(_ w: inout JSONWriter, _ view: SavedView) {
        w.object { v in
            v.string("view_id", view.viewID)
            v.string("experiment_id", view.experimentID)
            v.string("name", view.name)
            v.string("state", view.state)
            v.bool("default", view.isDefault)
            v.int("creation_time", view.creationTime)
            v.int("last_update_time", view.lastUpdateTime)
        }
    }
}
