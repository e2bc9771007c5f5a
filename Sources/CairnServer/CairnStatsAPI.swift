import CairnCore
import CairnServices
import Foundation

/// The statistics endpoints: `GET /api/cairn/v1/stats/groups`, `…/stats/compare`,
/// `…/stats/bands` and `…/online/report`. Each decodes its fields, calls one `StatsService`
/// method and encodes the answer (snake_case keys; undefined statistics left out). The
/// fields and shapes are in the README.
struct CairnStatsAPI: Sendable {
    let stats: StatsService

    var endpoints: [MLflowEndpoint] {
        [
            MLflowEndpoint(methods: ["GET"], path: "stats/groups", handler: groups),
            MLflowEndpoint(methods: ["GET"], path: "stats/compare", handler: compare),
            MLflowEndpoint(methods: ["GET"], path: "stats/bands", handler: bands),
            MLflowEndpoint(methods: ["GET"], path: "online/report", handler: online),
        ]
    }

    func request(_ f: RequestFields) throws -> StatsRequest {
        let seedParams = try f.strings("seed_params")
        return StatsRequest(
            experimentIDs: try f.strings("experiment_ids"), filter: try f.string("filter"), viewType: try f.viewType("view_type"),
            groupBy: try f.strings("group_by"), metrics: try f.strings("metrics") + f.strings("metric"), at: try f.string("at"),
            directions: try f.strings("direction"), seedParams: seedParams.isEmpty ? nil : seedParams,
            level: try f.double("level"), interval: try f.string("interval"))
    }

    func groups(_ f: RequestFields) async throws -> [UInt8] {
        try Self.encode(try await stats.groups(request(f)))
    }

    func compare(_ f: RequestFields) async throws -> [UInt8] {
        try Self.encode(try await stats.compare(request(f), baseline: f.string("baseline"), correction: f.string("correction"), pair: f.string("pair")))
    }

    func bands(_ f: RequestFields) async throws -> [UInt8] {
        try Self.encode(try await stats.bands(request(f), axis: f.string("x"), buckets: f.int64("buckets"), band: f.string("band")))
    }

    func online(_ f: RequestFields) async throws -> [UInt8] {
        guard let id = try f.string("experiment_id"), !id.isEmpty else {
            throw CairnError.invalidParameter("Missing value for required parameter 'experiment_id'.")
        }
        return try Self.encode(try await stats.onlineReport(experimentID: id, metrics: f.strings("metrics"), level: f.double("level")))
    }

    static func encode(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(value))
    }
}
