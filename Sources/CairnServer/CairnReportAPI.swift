import CairnCore
import CairnServices

/// `GET /api/cairn/v1/report[?experiment_id=1&experiment_id=2]`: the health figures of
/// `ReportService` (no experiment_id: every active experiment).
struct CairnReportAPI: Sendable {
    let report: ReportService

    var endpoints: [MLflowEndpoint] {
        [MLflowEndpoint(methods: ["GET"], path: "report", handler: getReport)]
    }

    func getReport(_ f: RequestFields) async throws -> [UInt8] {
        let ids = try f.strings("experiment_id")
        return Self.encode(try await report.report(experimentIDs: ids))
    }

    static func encode(_ r: HealthReport) -> [UInt8] {
        WireEncoding.reply { o in
            o.key("experiment_ids")
            o.writer.array(r.experimentIDs) { w, id in w.string(id) }
            o.object("runs") { x in
                x.int("total", Int64(r.total))
                x.int("finished", Int64(r.finished))
                x.int("failed", Int64(r.failed))
                x.int("killed", Int64(r.killed))
                x.int("running", Int64(r.running))
                x.int("stale", Int64(r.stale))
                x.int("scheduled", Int64(r.scheduled))
            }
            o.key("success_rate")
            if let rate = r.successRate { o.writer.double(rate) } else { o.writer.raw("null") }
            o.object("linkage") { x in
                x.int("total", Int64(r.total))
                x.int("with_code", Int64(r.withCode))
                x.int("with_data", Int64(r.withData))
                x.int("with_both", Int64(r.withBoth))
            }
            o.object("artifacts") { x in
                x.int("files", Int64(r.files))
                x.int("blobs", Int64(r.blobs))
                x.int("verified", Int64(r.verified))
                x.int("missing", Int64(r.missing))
                x.int("damaged", Int64(r.damaged))
                x.int("unchecked", Int64(r.unchecked))
                x.int("checked_now", Int64(r.checkedNow))
                x.key("oldest_check_time")
                if let time = r.oldestCheck { x.writer.int(time) } else { x.writer.raw("null") }
            }
            o.object("reproducibility") { x in
                x.int("attempted", Int64(r.reproduceAttempted))
                x.int("reproduced", Int64(r.reproduced))
            }
            if let audit = r.audit {
                o.object("audit") { x in CairnAuditAPI.fields(&x, audit) }
            }
        }
    }
}
