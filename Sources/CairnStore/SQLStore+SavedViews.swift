import CairnCore

extension SQLStore: SavedViewStore {
    static let savedViewColumns = "view_id, experiment_id, name, state, is_default, creation_time, last_update_time"

    public func createSavedView(experimentID: Int64, id: String, _ fields: SavedViewChange, now: Int64) async throws -> SavedView {
        try await write("view.create", "view:\(id)", details: ["experiment": .number(String(experimentID))]) { db in
            let name = fields.name ?? ""
            try Self.requireUniqueViewName(db, experimentID: experimentID, name: name, except: nil)
            let isDefault = fields.isDefault ?? false
            if isDefault { try Self.clearDefaultView(db, experimentID: experimentID) }
            _ = try db.execute("""
                INSERT INTO saved_views (view_id, experiment_id, name, state, is_default, creation_time, last_update_time)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, [id, experimentID, name, fields.state ?? "{}", isDefault ? 1 : 0, now, now])
            return try Self.loadSavedView(db, experimentID: experimentID, id: id)
        }
    }

    public func listSavedViews(experimentID: Int64) async throws -> [SavedView] {
        try await read { db in
            try db.rows("SELECT \(Self.savedViewColumns) FROM saved_views WHERE experiment_id = ? ORDER BY name, view_id", [experimentID])
                .map(Self.savedView)
        }
    }

    public func fetchSavedView(experimentID: Int64, id: String) async throws -> SavedView {
        try await read { db in try Self.loadSavedView(db, experimentID: experimentID, id: id) }
    }

    public func updateSavedView(experimentID: Int64, id: String, _ change: SavedViewChange, now: Int64) async throws -> SavedView {
        try await write("view.update", "view:\(id)", details: ["experiment": .number(String(experimentID))]) { db in
            _ = try Self.loadSavedView(db, experimentID: experimentID, id: id)
            if let name = change.name {
                try Self.requireUniqueViewName(db, experimentID: experimentID, name: name, except: id)
                _ = try db.execute("UPDATE saved_views SET name = ? WHERE view_id = ?", [name, id])
            }
            if let state = change.state {
                _ = try db.execute("UPDATE saved_views SET state = ? WHERE view_id = ?", [state, id])
            }
            if let isDefault = change.isDefault {
                if isDefault { try Self.clearDefaultView(db, experimentID: experimentID) }
                _ = try db.execute("UPDATE saved_views SET is_default = ? WHERE view_id = ?", [isDefault ? 1 : 0, id])
            }
            _ = try db.execute("UPDATE saved_views SET last_update_time = ? WHERE view_id = ?", [now, id])
            return try Self.loadSavedView(db, experimentID: experimentID, id: id)
        }
    }

    public func deleteSavedView(experimentID: Int64, id: String) async throws {
        try await write("view.delete", "view:\(id)", details: ["experiment": .number(String(experimentID))]) { db in
            _ = try Self.loadSavedView(db, experimentID: experimentID, id: id)
            _ = try db.execute("DELETE FROM saved_views WHERE view_id = ?", [id])
        }
    }

    static func requireUniqueViewName(_ db: any SQLSession, experimentID: Int64, name: String, except id: String?) throws {
        let other = try db.value(String.self, "SELECT view_id FROM saved_views WHERE experiment_id = ? AND name = ?", [experimentID, name])
        if let other, other != id {
            throw CairnError.alreadyExists("A view named '\(name)' already exists in experiment \(experimentID). Choose another name or update that view.")
        }
    }

    static func clearDefaultView(_ db: any SQLSession, experimentID: Int64) throws {
        _ = try db.execute("UPDATE saved_views SET is_default = 0 WHERE experiment_id = ? AND is_default = 1", [experimentID])
    }

    static func loadSavedView(_ db: any SQLSession, experimentID: Int64, id: String) throws -> SavedView {
        guard let row = try db.row("SELECT \(savedViewColumns) FROM saved_views WHERE experiment_id = ? AND view_id = ?", [experimentID, id]) else {
            throw CairnError.notFound("View '\(id)' not found in experiment \(experimentID).")
        }
        return savedView(row)
    }

    static func savedView(_ row: SQLRow) -> SavedView {
        let experimentID: Int64 = row[1]
        let isDefault: Int64 = row[4]
        return SavedView(viewID: row[0], experimentID: String(experimentID), name: row[2], state: row[3], isDefault: isDefault != 0,
                         creationTime: row[5], lastUpdateTime: row[6])
    }
}
