import CairnCore
import CairnServices

/// Cairn's own read endpoints for the web UI (`/api/cairn/v1/…`): whole run tables, column
/// catalogs, grouped counts and multi-run bucketed series, each in one request. Each route
/// decodes, calls one `ExplorerService` method and encodes; the shapes are in the README.
struct CairnAPI: Sendable {
    let explorer: ExplorerService

    var endpoints: [MLflowEndpoint] {
        [
            MLflowEndpoint(methods: ["GET"], path: "experiments", handler: experiments),
            MLflowEndpoint(methods: ["GET"], path: "runs/table", handler: runTable),
            MLflowEndpoint(methods: ["GET"], path: "runs/ids", handler: runIDs),
            MLflowEndpoint(methods: ["GET"], path: "runs/columns", handler: columns),
            MLflowEndpoint(methods: ["GET"], path: "runs/groups", handler: groups),
            MLflowEndpoint(methods: ["GET"], path: "metrics/series", handler: series),
            MLflowEndpoint(methods: ["GET"], path: "storage", handler: storage),
            MLflowEndpoint(methods: ["GET"], path: "dashboard", handler: dashboard),
            MLflowEndpoint(methods: ["GET"], path: "cost", handler: cost),
        ]
    }

    func cost(_ f: RequestFields) async throws -> [UInt8] {
        try CairnStatsAPI.encode(["experiments": try await explorer.cost(experimentIDs: f.strings("experiment_id"))])
    }

    func dashboard(_ f: RequestFields) async throws -> [UInt8] {
        try CairnStatsAPI.encode(try await explorer.dashboard(window: f.string("window"), experimentIDs: f.strings("experiment_id")))
    }

    func storage(_ f: RequestFields) async throws -> [UInt8] {
        let usage = try await explorer.storage(experimentIDs: f.strings("experiment_ids"), runIDs: f.strings("run_id"), largest: f.int64("runs"))
        return try CairnStatsAPI.encode(["experiments": usage])
    }

    func experiments(_ f: RequestFields) async throws -> [UInt8] {
        let summaries = try await explorer.experimentSummaries(viewType: f.viewType("view_type"))
        return WireEncoding.reply { o in
            o.key("experiments")
            o.writer.array(summaries) { w, s in
                w.object { x in
                    WireEncoding.experimentFields(&x, s.experiment)
                    x.int("run_count", Int64(s.runCount))
                    x.int("last_activity", s.lastActivity)
                }
            }
        }
    }

    func runTable(_ f: RequestFields) async throws -> [UInt8] {
        let (rows, hasMore, total) = try await explorer.runTable(
            experimentIDs: f.strings("experiment_ids"), filter: f.string("filter"), orderBy: f.strings("order_by"),
            viewType: f.viewType("view_type"), maxResults: f.int64("max_results"), offset: f.int64("offset"), total: f.bool("total") ?? false)
        var w = JSONWriter(capacity: 256 * max(rows.count, 1))
        let now = explorer.currentTime()
        w.object { o in
            o.key("runs")
            o.writer.array(rows) { w, row in
                w.object { r in
                    let info = row.info
                    let (lastActivity, stale) = explorer.staleness(of: row, at: now)
                    r.string("run_id", info.runID)
                    r.string("run_name", info.runName)
                    r.string("experiment_id", info.experimentID)
                    r.string("user_id", info.userID)
                    r.string("status", info.status.rawValue)
                    if let start = info.startTime { r.int("start_time", start) }
                    if let end = info.endTime { r.int("end_time", end) }
                    r.string("lifecycle_stage", info.lifecycleStage.rawValue)
                    if let lastActivity { r.int("last_activity", lastActivity) }
                    if stale { r.bool("stale", true) }
                    r.object("params") { p in for param in row.params { p.string(param.key, param.value) } }
                    r.object("tags") { t in for tag in row.tags { t.string(tag.key, tag.value) } }
                    r.object("metrics") { m in
                        for metric in row.metrics {
                            // [latest, min, max, step, timestamp, count]; min/max null when every point is NaN.
                            m.key(metric.key)
                            m.writer.raw("[")
                            m.writer.double(metric.latest)
                            m.writer.raw(",")
                            if let min = metric.min { m.writer.double(min) } else { m.writer.raw("null") }
                            m.writer.raw(",")
                            if let max = metric.max { m.writer.double(max) } else { m.writer.raw("null") }
                            m.writer.raw(",")
                            m.writer.int(metric.step)
                            m.writer.raw(",")
                            m.writer.int(metric.timestamp)
                            m.writer.raw(",")
                            m.writer.int(metric.count)
                            m.writer.raw("]")
                        }
                    }
                }
            }
            o.bool("has_more", hasMore)
            if let total { o.int("total", Int64(total)) }
        }
        return w.bytes
    }

    func runIDs(_ f: RequestFields) async throws -> [UInt8] {
        let ids = try await explorer.runIDs(experimentIDs: f.strings("experiment_ids"), filter: f.string("filter"), viewType: f.viewType("view_type"))
        var w = JSONWriter(capacity: 40 * max(ids.count, 1))
        w.object { o in
            o.key("run_ids")
            o.writer.array(ids) { w, id in w.string(id) }
        }
        return w.bytes
    }

    func columns(_ f: RequestFields) async throws -> [UInt8] {
        let catalog = try await explorer.columnCatalog(experimentIDs: f.strings("experiment_ids"))
        return WireEncoding.reply { o in
            for (name, keys) in [("params", catalog.params), ("metrics", catalog.metrics), ("tags", catalog.tags)] {
                o.key(name)
                o.writer.array(keys) { w, key in w.string(key) }
            }
        }
    }

    func groups(_ f: RequestFields) async throws -> [UInt8] {
        let groupBy = try f.string("group_by") ?? ""
        let counts = try await explorer.groupCounts(
            experimentIDs: f.strings("experiment_ids"), filter: f.string("filter"), viewType: f.viewType("view_type"), groupBy: groupBy)
        return WireEncoding.reply { o in
            o.string("group_by", groupBy)
            o.key("groups")
            o.writer.array(counts) { w, group in
                w.object { g in
                    if let value = group.value { g.string("value", value) } else { g.bool("missing", true) }
                    g.int("count", Int64(group.count))
                }
            }
        }
    }

    func series(_ f: RequestFields) async throws -> [UInt8] {
        let axis = try f.string("x") ?? "step"
        let result = try await explorer.series(
            runIDs: f.strings("run_ids"), keys: f.strings("keys"), axis: axis,
            minX: f.int64("min_x"), maxX: f.int64("max_x"), buckets: f.int64("buckets"))
        var w = JSONWriter(capacity: 64 * 1024)
        w.object { o in
            o.string("x", axis)
            o.key("series")
            o.writer.array(result) { w, s in
                w.object { x in
                    x.string("run_id", s.runID)
                    x.string("key", s.key)
                    x.int("point_count", Int64(s.pointCount))
                    x.key("first_x")
                    x.writer.array(s.buckets) { w, b in w.int(b.firstX) }
                    x.key("last_x")
                    x.writer.array(s.buckets) { w, b in w.int(b.lastX) }
                    x.key("min")
                    x.writer.array(s.buckets) { w, b in w.double(b.min) }
                    x.key("max")
                    x.writer.array(s.buckets) { w, b in w.double(b.max) }
                    x.key("last")
                    x.writer.array(s.buckets) { w, b in w.double(b.last) }
                    x.key("count")
                    x.writer.array(s.buckets) { w, b in w.int(Int64(b.count)) }
                }
            }
        }
        return w.bytes
    }
}
