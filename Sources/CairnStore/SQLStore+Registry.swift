import CairnCore

extension SQLStore: RegistryStore {
    // MARK: - Registered models

    public func createRegisteredModel(name: String, description: String, tags: [Tag], user: String, now: Int64) async throws -> RegisteredModel {
        try await write("registered_model.create", "registered_model:\(name)", details: ["tags": .int(tags.count)]) { db in
            if try db.value(Bool.self, "SELECT 1 FROM registered_models WHERE name = ?", [name]) == true {
                throw CairnError.alreadyExists("Registered Model (name=\(name)) already exists.")
            }
            let pk = try db.insert("""
                INSERT INTO registered_models (name, description, user_id, creation_timestamp, last_updated_timestamp) VALUES (?, ?, ?, ?, ?)
                RETURNING model_pk
                """, [name, description, user, now, now])
            for tag in tags {
                try db.execute("INSERT INTO registered_model_tags (model_pk, key, value) VALUES (?, ?, ?) ON CONFLICT (model_pk, key) DO UPDATE SET value = excluded.value", [pk, tag.key, tag.value])
            }
            try Self.recordEvent(db, pk: pk, name: name, version: nil, user: user, now: now, action: "create_registered_model",
                                 changes: ["description": .string(description), "tags": Self.json(tags)])
            if tags.contains(where: { $0.key == Self.promptTag && $0.value.lowercased() == "true" }) {
                let shown = tags.filter { $0.key != Self.promptTag && $0.key != Self.promptTypeTag }
                try Self.enqueueWebhookEvent(db, .promptCreated, data: .object([
                    ("name", .string(name)), ("tags", WebhookPayload.tags(shown)), ("description", .string(description)),
                ]), now: now)
            } else {
                try Self.enqueueWebhookEvent(db, .registeredModelCreated, data: .object([
                    ("name", .string(name)), ("tags", WebhookPayload.tags(tags)), ("description", .string(description)),
                ]), now: now)
            }
            return try Self.loadRegisteredModel(db, pk: pk)
        }
    }

    public func fetchRegisteredModel(name: String) async throws -> RegisteredModel {
        try await read { db in try Self.loadRegisteredModel(db, pk: Self.registeredModelPK(db, name: name)) }
    }

    public func renameRegisteredModel(name: String, newName: String, user: String, now: Int64) async throws -> RegisteredModel {
        try await write("registered_model.rename", "registered_model:\(name)", details: ["new_name": .string(newName)]) { db in
            let pk = try Self.registeredModelPK(db, name: name)
            if newName != name, try db.value(Bool.self, "SELECT 1 FROM registered_models WHERE name = ?", [newName]) == true {
                throw CairnError.alreadyExists("Registered Model (name=\(newName)) already exists.")
            }
            try db.execute("UPDATE registered_models SET name = ?, last_updated_timestamp = ? WHERE model_pk = ?", [newName, now, pk])
            try Self.recordEvent(db, pk: pk, name: newName, version: nil, user: user, now: now, action: "rename",
                                 changes: ["from": .string(name), "to": .string(newName)])
            return try Self.loadRegisteredModel(db, pk: pk)
        }
    }

    public func updateRegisteredModel(name: String, description: String, user: String, now: Int64) async throws -> RegisteredModel {
        try await write("registered_model.update", "registered_model:\(name)", digest: Self.tagDigest(Tag("description", description))) { db in
            let pk = try Self.registeredModelPK(db, name: name)
            let old = try db.value(String.self, "SELECT description FROM registered_models WHERE model_pk = ?", [pk]) ?? ""
            try db.execute("UPDATE registered_models SET description = ?, last_updated_timestamp = ? WHERE model_pk = ?", [description, now, pk])
            try Self.recordEvent(db, pk: pk, name: name, version: nil, user: user, now: now, action: "update_description",
                                 changes: ["from": .string(old), "to": .string(description)])
            return try Self.loadRegisteredModel(db, pk: pk)
        }
    }

    public func deleteRegisteredModel(name: String, user: String, now: Int64) async throws {
        try await write("registered_model.delete", "registered_model:\(name)") { db in
            let pk = try Self.registeredModelPK(db, name: name)
            for table in ["registered_model_aliases", "model_version_tags", "model_versions", "registered_model_tags"] {
                try db.execute("DELETE FROM \(table) WHERE model_pk = ?", [pk])
            }
            try db.execute("DELETE FROM registered_models WHERE model_pk = ?", [pk])
            try Self.recordEvent(db, pk: pk, name: name, version: nil, user: user, now: now, action: "delete_registered_model", changes: [:])
        }
    }

    public func setRegisteredModelTag(name: String, tag: Tag, user: String, now: Int64) async throws {
        try await write("registered_model.tag.set", "registered_model:\(name)", details: ["key": .string(tag.key)], digest: Self.tagDigest(tag)) { db in
            let pk = try Self.registeredModelPK(db, name: name)
            let old = try db.value(String.self, "SELECT value FROM registered_model_tags WHERE model_pk = ? AND key = ?", [pk, tag.key])
            try db.execute("INSERT INTO registered_model_tags (model_pk, key, value) VALUES (?, ?, ?) ON CONFLICT (model_pk, key) DO UPDATE SET value = excluded.value", [pk, tag.key, tag.value])
            try Self.recordEvent(db, pk: pk, name: name, version: nil, user: user, now: now, action: "set_tag",
                                 changes: ["key": .string(tag.key), "from": old.map(JSONValue.string) ?? .null, "to": .string(tag.value)])
            if try Self.isPrompt(db, pk: pk) {
                try Self.enqueueWebhookEvent(db, .promptTagSet, data: .object([
                    ("name", .string(name)), ("key", .string(tag.key)), ("value", .string(tag.value)),
                ]), now: now)
            }
        }
    }

    public func deleteRegisteredModelTag(name: String, key: String, user: String, now: Int64) async throws {
        try await write("registered_model.tag.delete", "registered_model:\(name)", details: ["key": .string(key)]) { db in
            let pk = try Self.registeredModelPK(db, name: name)
            // Deleting an absent tag is a no-op, as in MLflow.
            guard let old = try db.value(String.self, "SELECT value FROM registered_model_tags WHERE model_pk = ? AND key = ?", [pk, key]) else {
                return
            }
            try db.execute("DELETE FROM registered_model_tags WHERE model_pk = ? AND key = ?", [pk, key])
            try Self.recordEvent(db, pk: pk, name: name, version: nil, user: user, now: now, action: "delete_tag",
                                 changes: ["key": .string(key), "from": .string(old)])
            if try Self.isPrompt(db, pk: pk) {
                try Self.enqueueWebhookEvent(db, .promptTagDeleted, data: .object([("name", .string(name)), ("key", .string(key))]), now: now)
            }
        }
    }

    public func searchRegisteredModels(_ search: RegistrySearch) async throws -> (items: [RegisteredModel], hasMore: Bool) {
        let query = try searchSQL.registeredModelQuery(search)
        return try await read { db in
            var pks = try db.values(Int64.self, query)
            let hasMore = pks.count > search.maxResults
            if hasMore { pks.removeLast() }
            return (try pks.map { try Self.loadRegisteredModel(db, pk: $0) }, hasMore)
        }
    }

    // MARK: - Versions

    public func createModelVersion(_ new: NewModelVersion, now: Int64) async throws -> ModelVersion {
        let details: [String: JSONValue] = [
            "source": .string(new.source), "run_id": new.runID.map(JSONValue.string) ?? .null,
            "model_id": new.modelID.map(JSONValue.string) ?? .null, "tags": .int(new.tags.count),
        ]
        return try await write(audit: { (created: ModelVersion) in
            AuditDraft("model_version.create", "model_version:\(new.name)/\(created.version)", details: details)
        }) { db in
            let pk = try Self.registeredModelPK(db, name: new.name)
            let version = (try db.value(Int64.self, "SELECT MAX(version) FROM model_versions WHERE model_pk = ?", [pk]) ?? 0) + 1
            try db.execute("""
                INSERT INTO model_versions (model_pk, version, creation_timestamp, last_updated_timestamp, user_id, current_stage,
                                            description, source, run_id, run_link, status, model_id)
                VALUES (?, ?, ?, ?, ?, 'None', ?, ?, ?, ?, 'READY', ?)
                """, [pk, version, now, now, new.userID, new.description, new.source, new.runID, new.runLink, new.modelID])
            for tag in new.tags {
                try db.execute("INSERT INTO model_version_tags (model_pk, version, key, value) VALUES (?, ?, ?, ?) ON CONFLICT (model_pk, version, key) DO UPDATE SET value = excluded.value", [pk, version, tag.key, tag.value])
            }
            try db.execute("UPDATE registered_models SET last_updated_timestamp = ? WHERE model_pk = ?", [now, pk])
            if let modelID = new.modelID {
                try Self.appendModelVersionLink(db, modelID: modelID, name: new.name, version: version)
            }
            try Self.recordEvent(db, pk: pk, name: new.name, version: version, user: new.userID, now: now, action: "create", changes: [
                "source": .string(new.source), "run_id": new.runID.map(JSONValue.string) ?? .null,
                "model_id": new.modelID.map(JSONValue.string) ?? .null, "description": .string(new.description), "tags": Self.json(new.tags),
            ])
            let description = WebhookPayload.optional(new.description.isEmpty ? nil : new.description)
            if try Self.isPrompt(db, pk: pk) {
                let template = new.tags.last { $0.key == Self.promptTextTag }?.value
                let shown = new.tags.filter { ![Self.promptTag, Self.promptTypeTag, Self.promptTextTag].contains($0.key) }
                try Self.enqueueWebhookEvent(db, .promptVersionCreated, data: .object([
                    ("name", .string(new.name)), ("version", .string(String(version))), ("template", WebhookPayload.optional(template)),
                    ("tags", WebhookPayload.tags(shown)), ("description", description),
                ]), now: now)
            } else {
                try Self.enqueueWebhookEvent(db, .modelVersionCreated, data: .object([
                    ("name", .string(new.name)), ("version", .string(String(version))), ("source", .string(new.source)),
                    ("run_id", WebhookPayload.optional(new.runID)), ("tags", WebhookPayload.tags(new.tags)), ("description", description),
                ]), now: now)
            }
            return try Self.loadVersion(db, pk: pk, name: new.name, version: version)
        }
    }

    public func fetchModelVersion(name: String, version: Int64) async throws -> ModelVersion {
        try await read { db in try Self.loadVersion(db, pk: Self.registeredModelPK(db, name: name), name: name, version: version) }
    }

    public func updateModelVersion(name: String, version: Int64, description: String, user: String, now: Int64) async throws -> ModelVersion {
        try await write("model_version.update", "model_version:\(name)/\(version)", digest: Self.tagDigest(Tag("description", description))) { db in
            let pk = try Self.registeredModelPK(db, name: name)
            let old = try Self.loadVersion(db, pk: pk, name: name, version: version).description
            try db.execute("UPDATE model_versions SET description = ?, last_updated_timestamp = ? WHERE model_pk = ? AND version = ?", [description, now, pk, version])
            try Self.recordEvent(db, pk: pk, name: name, version: version, user: user, now: now, action: "update_description",
                                 changes: ["from": .string(old), "to": .string(description)])
            return try Self.loadVersion(db, pk: pk, name: name, version: version)
        }
    }

    public func deleteModelVersion(name: String, version: Int64, user: String, now: Int64) async throws {
        try await write("model_version.delete", "model_version:\(name)/\(version)") { db in
            let pk = try Self.registeredModelPK(db, name: name)
            _ = try Self.loadVersion(db, pk: pk, name: name, version: version)
            try db.execute("UPDATE model_versions SET deleted = 1, last_updated_timestamp = ? WHERE model_pk = ? AND version = ?", [now, pk, version])
            try db.execute("DELETE FROM model_version_tags WHERE model_pk = ? AND version = ?", [pk, version])
            try db.execute("DELETE FROM registered_model_aliases WHERE model_pk = ? AND version = ?", [pk, version])
            try db.execute("UPDATE registered_models SET last_updated_timestamp = ? WHERE model_pk = ?", [now, pk])
            try Self.recordEvent(db, pk: pk, name: name, version: version, user: user, now: now, action: "delete", changes: [:])
        }
    }

    public func setModelVersionTag(name: String, version: Int64, tag: Tag, user: String, now: Int64) async throws {
        try await write("model_version.tag.set", "model_version:\(name)/\(version)", details: ["key": .string(tag.key)], digest: Self.tagDigest(tag)) { db in
            let pk = try Self.registeredModelPK(db, name: name)
            _ = try Self.loadVersion(db, pk: pk, name: name, version: version)
            let old = try db.value(String.self, "SELECT value FROM model_version_tags WHERE model_pk = ? AND version = ? AND key = ?", [pk, version, tag.key])
            try db.execute("INSERT INTO model_version_tags (model_pk, version, key, value) VALUES (?, ?, ?, ?) ON CONFLICT (model_pk, version, key) DO UPDATE SET value = excluded.value", [pk, version, tag.key, tag.value])
            try Self.recordEvent(db, pk: pk, name: name, version: version, user: user, now: now, action: "set_tag",
                                 changes: ["key": .string(tag.key), "from": old.map(JSONValue.string) ?? .null, "to": .string(tag.value)])
            try Self.enqueueWebhookEvent(db, Self.isPrompt(db, pk: pk) ? .promptVersionTagSet : .modelVersionTagSet, data: .object([
                ("name", .string(name)), ("version", .string(String(version))), ("key", .string(tag.key)), ("value", .string(tag.value)),
            ]), now: now)
        }
    }

    public func deleteModelVersionTag(name: String, version: Int64, key: String, user: String, now: Int64) async throws {
        try await write("model_version.tag.delete", "model_version:\(name)/\(version)", details: ["key": .string(key)]) { db in
            let pk = try Self.registeredModelPK(db, name: name)
            _ = try Self.loadVersion(db, pk: pk, name: name, version: version)
            guard let old = try db.value(String.self, "SELECT value FROM model_version_tags WHERE model_pk = ? AND version = ? AND key = ?", [pk, version, key]) else {
                return
            }
            try db.execute("DELETE FROM model_version_tags WHERE model_pk = ? AND version = ? AND key = ?", [pk, version, key])
            try Self.recordEvent(db, pk: pk, name: name, version: version, user: user, now: now, action: "delete_tag",
                                 changes: ["key": .string(key), "from": .string(old)])
            try Self.enqueueWebhookEvent(db, Self.isPrompt(db, pk: pk) ? .promptVersionTagDeleted : .modelVersionTagDeleted, data: .object([
                ("name", .string(name)), ("version", .string(String(version))), ("key", .string(key)),
            ]), now: now)
        }
    }

    public func transitionModelVersionStage(name: String, version: Int64, stage: String, archiveExisting: Bool, user: String, now: Int64) async throws -> ModelVersion {
        try await write("model_version.stage.transition", "model_version:\(name)/\(version)",
                        details: ["stage": .string(stage), "archive_existing_versions": .bool(archiveExisting)]) { db in
            let pk = try Self.registeredModelPK(db, name: name)
            let old = try Self.loadVersion(db, pk: pk, name: name, version: version).currentStage
            if archiveExisting, stage == "Staging" || stage == "Production" {
                let others = try db.values(Int64.self, """
                    SELECT version FROM model_versions WHERE model_pk = ? AND version != ? AND current_stage = ? AND deleted = 0
                    """, [pk, version, stage])
                for other in others {
                    try db.execute("UPDATE model_versions SET current_stage = 'Archived', last_updated_timestamp = ? WHERE model_pk = ? AND version = ?", [now, pk, other])
                    try Self.recordEvent(db, pk: pk, name: name, version: other, user: user, now: now, action: "transition_stage",
                                         changes: ["from": .string(stage), "to": .string("Archived"), "because": .string("version \(version) moved to \(stage)")])
                }
            }
            try db.execute("UPDATE model_versions SET current_stage = ?, last_updated_timestamp = ? WHERE model_pk = ? AND version = ?", [stage, now, pk, version])
            try db.execute("UPDATE registered_models SET last_updated_timestamp = ? WHERE model_pk = ?", [now, pk])
            try Self.recordEvent(db, pk: pk, name: name, version: version, user: user, now: now, action: "transition_stage",
                                 changes: ["from": .string(old), "to": .string(stage), "archive_existing_versions": .bool(archiveExisting)])
            return try Self.loadVersion(db, pk: pk, name: name, version: version)
        }
    }

    public func searchModelVersions(_ search: RegistrySearch) async throws -> (items: [ModelVersion], hasMore: Bool) {
        let query = try searchSQL.modelVersionQuery(search)
        return try await read { db in
            var rows = try db.rows(query).map { ($0[0] as Int64, $0[1] as String, $0[2] as Int64) }
            let hasMore = rows.count > search.maxResults
            if hasMore { rows.removeLast() }
            return (try rows.map { try Self.loadVersion(db, pk: $0.0, name: $0.1, version: $0.2) }, hasMore)
        }
    }

    public func latestModelVersions(name: String, stages: [String]) async throws -> [ModelVersion] {
        try await read { db in
            let pk = try Self.registeredModelPK(db, name: name)
            return try Self.latestVersions(db, pk: pk, name: name, stages: stages)
        }
    }

    // MARK: - Aliases

    public func setRegisteredModelAlias(name: String, alias: String, version: Int64, user: String, now: Int64) async throws {
        try await write("registered_model.alias.set", "registered_model:\(name)", details: ["alias": .string(alias), "version": .int(version)]) { db in
            let pk = try Self.registeredModelPK(db, name: name)
            _ = try Self.loadVersion(db, pk: pk, name: name, version: version)
            let old = try db.value(Int64.self, "SELECT version FROM registered_model_aliases WHERE model_pk = ? AND alias = ?", [pk, alias])
            try db.execute("INSERT INTO registered_model_aliases (model_pk, alias, version) VALUES (?, ?, ?) ON CONFLICT (model_pk, alias) DO UPDATE SET version = excluded.version", [pk, alias, version])
            if let old, old != version {
                try Self.recordEvent(db, pk: pk, name: name, version: old, user: user, now: now, action: "delete_alias",
                                     changes: ["alias": .string(alias), "moved_to_version": .number(String(version))])
            }
            try Self.recordEvent(db, pk: pk, name: name, version: version, user: user, now: now, action: "set_alias",
                                 changes: ["alias": .string(alias), "from_version": old.map { .number(String($0)) } ?? .null])
            try Self.enqueueWebhookEvent(db, Self.isPrompt(db, pk: pk) ? .promptAliasCreated : .modelVersionAliasCreated, data: .object([
                ("name", .string(name)), ("alias", .string(alias)), ("version", .string(String(version))),
            ]), now: now)
        }
    }

    public func deleteRegisteredModelAlias(name: String, alias: String, user: String, now: Int64) async throws {
        try await write("registered_model.alias.delete", "registered_model:\(name)", details: ["alias": .string(alias)]) { db in
            let pk = try Self.registeredModelPK(db, name: name)
            guard let version = try db.value(Int64.self, "SELECT version FROM registered_model_aliases WHERE model_pk = ? AND alias = ?", [pk, alias]) else {
                return
            }
            try db.execute("DELETE FROM registered_model_aliases WHERE model_pk = ? AND alias = ?", [pk, alias])
            try Self.recordEvent(db, pk: pk, name: name, version: version, user: user, now: now, action: "delete_alias", changes: ["alias": .string(alias)])
            try Self.enqueueWebhookEvent(db, Self.isPrompt(db, pk: pk) ? .promptAliasDeleted : .modelVersionAliasDeleted, data: .object([
                ("name", .string(name)), ("alias", .string(alias)),
            ]), now: now)
        }
    }

    public func fetchModelVersion(name: String, alias: String) async throws -> ModelVersion {
        try await read { db in
            let pk = try Self.registeredModelPK(db, name: name)
            let sql = alias.lowercased() == "latest"
                ? "SELECT MAX(version) FROM model_versions WHERE model_pk = ? AND deleted = 0 AND ? IS NOT NULL"
                : "SELECT version FROM registered_model_aliases WHERE model_pk = ? AND alias = ?"
            guard let version = try db.value(Int64.self, sql, [pk, alias]) else {
                throw CairnError.invalidParameter("Registered model alias \(alias) not found.")
            }
            return try Self.loadVersion(db, pk: pk, name: name, version: version)
        }
    }

    public func registryHistory(name: String, version: Int64) async throws -> [RegistryEvent] {
        try await read { db in
            let pk = try Self.registeredModelPK(db, name: name)
            return try db.rows("""
                SELECT timestamp, "user", action, model_name, version, changes FROM registry_events
                WHERE model_pk = ? AND (version = ? OR version IS NULL) ORDER BY event_pk
                """, [pk, version]).map { row in
                RegistryEvent(timestamp: row[0], user: row[1], action: row[2], modelName: row[3], version: row[4],
                              changes: (try? JSONValue.parse(row[5] as String)) ?? .object([]))
            }
        }
    }

    // MARK: - Helpers

    /// Adds `{"name": …, "version": …}` to the logged model's `mlflow.modelVersions` tag (a JSON
    /// list), as the MLflow server does when a version is registered from it.
    static func appendModelVersionLink(_ db: any SQLSession, modelID: String, name: String, version: Int64) throws {
        let modelPK = try modelPK(db, id: modelID, allowDeleted: true)
        var links: [JSONValue] = []
        if let existing = try db.value(String.self, "SELECT value FROM logged_model_tags WHERE model_pk = ? AND key = 'mlflow.modelVersions'", [modelPK]),
           case .array(let items)? = try? JSONValue.parse(existing) {
            links = items
        }
        links.append(.object([("name", .string(name)), ("version", .number(String(version)))]))
        var writer = JSONWriter()
        writer.value(.array(links))
        try db.execute("INSERT INTO logged_model_tags (model_pk, key, value) VALUES (?, 'mlflow.modelVersions', ?) ON CONFLICT (model_pk, key) DO UPDATE SET value = excluded.value", [modelPK, writer.string])
    }

    static func registeredModelPK(_ db: any SQLSession, name: String) throws -> Int64 {
        guard let pk = try db.value(Int64.self, "SELECT model_pk FROM registered_models WHERE name = ?", [name]) else {
            throw CairnError.notFound("Registered Model with name=\(name) not found")
        }
        return pk
    }

    static func json(_ tags: [Tag]) -> JSONValue {
        .object(tags.map { ($0.key, .string($0.value)) })
    }

    public func recordRegistryEvent(name: String, version: Int64, action: String, changes: JSONValue, user: String, now: Int64, webhook: WebhookEvent?) async throws {
        var changesText = JSONWriter()
        changesText.value(changes)
        var hasher = AuditHasher()
        hasher.add(changesText.string)
        // Who promoted, where to and with what outcome go into the event's details; reasons
        // and check texts into the digest only.
        var details: [String: JSONValue] = [:]
        if case .object(let members) = changes {
            for (key, value) in members where ["alias", "stage", "result", "overridden_by"].contains(key) { details[key] = value }
        }
        try await write("model_version.\(action)", "model_version:\(name)/\(version)", details: details, digest: hasher.finalize()) { db in
            let pk = try Self.registeredModelPK(db, name: name)
            var writer = JSONWriter()
            writer.value(changes)
            try db.execute("""
                INSERT INTO registry_events (model_pk, model_name, version, timestamp, "user", action, changes) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, [pk, name, version, now, user, action, writer.string])
            if let webhook {
                var members: [(String, JSONValue)] = [("name", .string(name)), ("version", .string(String(version)))]
                if case .object(let rest) = changes { members += rest }
                try Self.enqueueWebhookEvent(db, webhook, data: .object(members), now: now)
            }
        }
    }

    static func recordEvent(_ db: any SQLSession, pk: Int64, name: String, version: Int64?, user: String, now: Int64, action: String,
                            changes: KeyValuePairs<String, JSONValue>) throws {
        var writer = JSONWriter()
        writer.value(.object(changes.map { ($0.key, $0.value) }))
        try db.execute("""
            INSERT INTO registry_events (model_pk, model_name, version, timestamp, "user", action, changes) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, [pk, name, version, now, user, action, writer.string])
    }

    static let versionColumns = """
        version, creation_timestamp, last_updated_timestamp, user_id, current_stage, description, source, run_id, run_link,
        status, status_message, model_id
        """

    static func loadVersion(_ db: any SQLSession, pk: Int64, name: String, version: Int64) throws -> ModelVersion {
        guard let row = try db.row("SELECT \(versionColumns) FROM model_versions WHERE model_pk = ? AND version = ? AND deleted = 0", [pk, version]) else {
            throw CairnError.notFound("Model Version (name=\(name), version=\(version)) not found")
        }
        return try Self.version(from: row, db: db, pk: pk, name: name)
    }

    static func version(from row: SQLRow, db: any SQLSession, pk: Int64, name: String) throws -> ModelVersion {
        let number: Int64 = row[0]
        let tags = try db.rows("SELECT key, value FROM model_version_tags WHERE model_pk = ? AND version = ? ORDER BY key", [pk, number])
            .map { Tag($0[0], $0[1]) }
        let aliases = try db.values(String.self, "SELECT alias FROM registered_model_aliases WHERE model_pk = ? AND version = ? ORDER BY alias", [pk, number])
        return ModelVersion(name: name, version: number, creationTimestamp: row[1], lastUpdatedTimestamp: row[2], userID: row[3],
                            currentStage: row[4], description: row[5], source: row[6], runID: row[7], runLink: row[8],
                            status: row[9], statusMessage: row[10], modelID: row[11], tags: tags, aliases: aliases)
    }

    static func latestVersions(_ db: any SQLSession, pk: Int64, name: String, stages: [String]) throws -> [ModelVersion] {
        var sql = """
            SELECT \(versionColumns) FROM model_versions v
            WHERE model_pk = ? AND deleted = 0
              AND version = (SELECT MAX(version) FROM model_versions w WHERE w.model_pk = v.model_pk AND w.deleted = 0 AND w.current_stage = v.current_stage)
            """
        var arguments: [any SQLBindable] = [pk]
        if !stages.isEmpty {
            sql += " AND current_stage IN (\(SearchSQL.marks(stages.count)))"
            arguments += stages as [any SQLBindable]
        }
        sql += " ORDER BY version"
        return try db.rows(sql, arguments).map { try Self.version(from: $0, db: db, pk: pk, name: name) }
    }

    static func loadRegisteredModel(_ db: any SQLSession, pk: Int64) throws -> RegisteredModel {
        guard let row = try db.row("""
            SELECT name, description, user_id, creation_timestamp, last_updated_timestamp FROM registered_models WHERE model_pk = ?
            """, [pk]) else {
            throw CairnError.notFound("Registered model not found")
        }
        let name: String = row[0]
        let tags = try db.rows("SELECT key, value FROM registered_model_tags WHERE model_pk = ? ORDER BY key", [pk]).map { Tag($0[0], $0[1]) }
        let aliases = try db.rows("SELECT alias, version FROM registered_model_aliases WHERE model_pk = ? ORDER BY alias", [pk])
            .map { (alias: $0[0] as String, version: $0[1] as Int64) }
        return RegisteredModel(name: name, creationTimestamp: row[3], lastUpdatedTimestamp: row[4], userID: row[2], description: row[1],
                               tags: tags, aliases: aliases, latestVersions: try latestVersions(db, pk: pk, name: name, stages: []))
    }
}
