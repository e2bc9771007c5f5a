import CairnCore
import CairnServer
import CairnServices
import CairnStore
import CairnTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// The web UI's endpoints and static files, through the router `cairn server` uses.
@Suite("Cairn API and web UI routes")
struct CairnAPIRoutesTests {
    typealias Reply = RouteReply

    func withApp(_ body: @escaping @Sendable (_ call: @escaping @Sendable (HTTPRequest.Method, String, String?) async throws -> Reply) async throws -> Void) async throws {
        try await withRouteApp(body)
    }

    static let api = "/api/2.0/mlflow"
    static let cairn = "/api/cairn/v1"

    /// Creates a run in experiment 0 with `body` as its log-batch and returns its id.
    static func makeRun(_ call: (HTTPRequest.Method, String, String?) async throws -> Reply, name: String, batch: String) async throws -> String {
        let created = try await call(.post, "\(api)/runs/create", #"{"experiment_id":"0","run_name":"\#(name)","start_time":1000}"#)
        let id = ((created.json["run"] as? [String: Any])?["info"] as? [String: Any])?["run_id"] as? String ?? ""
        let logged = try await call(.post, "\(api)/runs/log-batch", #"{"run_id":"\#(id)",\#(batch)}"#)
        #expect(logged.status == 200)
        return id
    }

    @Test("The runs table answers every run with params, tags and metric summaries in one reply; a bad filter is a 400 naming the problem")
    func runTable() async throws {
        try await withApp { call in
            let a = try await Self.makeRun(call, name: "a", batch: #""params":[{"key":"lr","value":"0.1"}],"metrics":[{"key":"loss","value":2,"timestamp":1,"step":0},{"key":"loss","value":"NaN","timestamp":2,"step":1}]"#)
            _ = try await Self.makeRun(call, name: "b", batch: #""params":[{"key":"lr","value":"0.2"}]"#)
            let table = try await call(.get, "\(Self.cairn)/runs/table?experiment_ids=0&filter=params.lr%20%3D%20'0.1'%20OR%20params.lr%20%3D%20'0.3'", nil)
            #expect(table.status == 200)
            let runs = table.json["runs"] as? [[String: Any]] ?? []
            #expect(runs.count == 1)
            #expect(runs.first?["run_id"] as? String == a)
            #expect((runs.first?["params"] as? [String: String]) == ["lr": "0.1"])
            let loss = (runs.first?["metrics"] as? [String: Any])?["loss"] as? [Any]
            #expect(loss?[0] as? String == "NaN")
            #expect((loss?[1] as? NSNumber)?.doubleValue == 2)
            #expect((loss?[5] as? NSNumber)?.intValue == 2)
            #expect(table.json["has_more"] as? Bool == false)
            let bad = try await call(.get, "\(Self.cairn)/runs/table?experiment_ids=0&filter=metrics.loss%20%3E%3E%201", nil)
            #expect(bad.status == 400)
            #expect(bad.json["error_code"] as? String == "INVALID_PARAMETER_VALUE")
            #expect(!(bad.json["message"] as? String ?? "").isEmpty)
            let ids = try await call(.get, "\(Self.cairn)/runs/ids?experiment_ids=0&filter=params.lr%20%3D%20'0.1'", nil)
            #expect(ids.json["run_ids"] as? [String] == [a])
            let badIDs = try await call(.get, "\(Self.cairn)/runs/ids?experiment_ids=0&filter=metrics.loss%20%3E%3E%201", nil)
            #expect(badIDs.status == 400)
            let noExperiments = try await call(.get, "\(Self.cairn)/runs/table", nil)
            #expect(noExperiments.status == 400)
        }
    }

    @Test("The runs table pages with max_results and offset, in the order asked, and counts every match when asked; a bad offset changes nothing")
    func runTablePages() async throws {
        try await withApp { call in
            var ids: [String] = []
            for i in 0..<7 {
                ids.append(try await Self.makeRun(call, name: "r\(i)", batch: #""params":[{"key":"lr","value":"\#(i % 2)"}],"metrics":[{"key":"acc","value":\#(i),"timestamp":1,"step":0}]"#))
            }
            func page(_ query: String) async throws -> (ids: [String], hasMore: Bool?, total: Int?) {
                let reply = try await call(.get, "\(Self.cairn)/runs/table?experiment_ids=0&\(query)", nil)
                #expect(reply.status == 200)
                let runs = reply.json["runs"] as? [[String: Any]] ?? []
                return (runs.compactMap { $0["run_id"] as? String }, reply.json["has_more"] as? Bool, (reply.json["total"] as? NSNumber)?.intValue)
            }
            let byAcc = "order_by=metrics.acc%20DESC&max_results=3"
            let first = try await page("\(byAcc)&total=true")
            #expect(first.ids == [ids[6], ids[5], ids[4]] && first.hasMore == true && first.total == 7)
            let second = try await page("\(byAcc)&offset=3")
            #expect(second.ids == [ids[3], ids[2], ids[1]] && second.hasMore == true && second.total == nil)
            let last = try await page("\(byAcc)&offset=6&total=true")
            #expect(last.ids == [ids[0]] && last.hasMore == false && last.total == 7)
            let filtered = try await page("filter=params.lr%20%3D%20'1'&max_results=2&total=true")
            #expect(filtered.ids.count == 2 && filtered.hasMore == true && filtered.total == 3)
            let whole = try await page("total=true")
            #expect(whole.ids.count == 7 && whole.hasMore == false && whole.total == 7)
            let bad = try await call(.get, "\(Self.cairn)/runs/table?experiment_ids=0&offset=-1", nil)
            #expect(bad.status == 400)
            #expect(bad.json["error_code"] as? String == "INVALID_PARAMETER_VALUE")
        }
    }

    @Test("Without accounts the permissions endpoint allows everything the UI asks about, and refuses more than 1,000 names")
    func permissionsWithoutAccounts() async throws {
        try await withApp { call in
            let reply = try await call(.get, "\(Self.cairn)/permissions?experiment_ids=0&experiment_ids=7&registered_model_names=m", nil)
            #expect(reply.status == 200)
            #expect(reply.json["auth"] as? Bool == false)
            #expect(reply.json["admin"] as? Bool == true)
            #expect(reply.json["can_create"] as? Bool == true)
            #expect(reply.json["experiments"] as? [String: String] == ["0": "MANAGE", "7": "MANAGE"])
            #expect(reply.json["registered_models"] as? [String: String] == ["m": "MANAGE"])
            let many = (0...1000).map { "experiment_ids=\($0)" }.joined(separator: "&")
            let refused = try await call(.get, "\(Self.cairn)/permissions?\(many)", nil)
            #expect(refused.status == 400)
            #expect(refused.json["error_code"] as? String == "INVALID_PARAMETER_VALUE")
        }
    }

    @Test("Columns, group counts and experiment summaries describe the runs")
    func catalogGroupsExperiments() async throws {
        try await withApp { call in
            _ = try await Self.makeRun(call, name: "a", batch: #""params":[{"key":"lr","value":"0.1"}],"tags":[{"key":"team","value":"x"}]"#)
            _ = try await Self.makeRun(call, name: "b", batch: #""params":[{"key":"lr","value":"0.1"}],"metrics":[{"key":"acc","value":1,"timestamp":1,"step":0}]"#)
            let columns = try await call(.get, "\(Self.cairn)/runs/columns?experiment_ids=0", nil)
            #expect(columns.json["params"] as? [String] == ["lr"])
            #expect(columns.json["metrics"] as? [String] == ["acc"])
            #expect((columns.json["tags"] as? [String])?.contains("team") == true)
            let groups = try await call(.get, "\(Self.cairn)/runs/groups?experiment_ids=0&group_by=tags.team", nil)
            let list = groups.json["groups"] as? [[String: Any]] ?? []
            #expect(list.count == 2)
            #expect(list.first?["value"] as? String == "x")
            #expect(list.last?["missing"] as? Bool == true)
            let badGroup = try await call(.get, "\(Self.cairn)/runs/groups?experiment_ids=0&group_by=metrics.acc", nil)
            #expect(badGroup.status == 400)
            let experiments = try await call(.get, "\(Self.cairn)/experiments", nil)
            let first = (experiments.json["experiments"] as? [[String: Any]])?.first
            #expect(first?["name"] as? String == "Default")
            #expect((first?["run_count"] as? NSNumber)?.intValue == 2)
        }
    }

    @Test("Series come bucketed per run and key, zoomable by x range; bad axes and limits are 400s")
    func series() async throws {
        try await withApp { call in
            let points = (0..<200).map { #"{"key":"loss","value":\#($0 == 150 ? 99 : 1),"timestamp":\#(1000 + $0),"step":\#($0)}"# }.joined(separator: ",")
            let a = try await Self.makeRun(call, name: "a", batch: #""metrics":[\#(points)]"#)
            let reply = try await call(.get, "\(Self.cairn)/metrics/series?run_ids=\(a)&keys=loss&buckets=20", nil)
            #expect(reply.status == 200)
            let series = (reply.json["series"] as? [[String: Any]])?.first
            #expect((series?["point_count"] as? NSNumber)?.intValue == 200)
            #expect((series?["max"] as? [NSNumber])?.count == 20)
            #expect((series?["max"] as? [NSNumber])?[15].doubleValue == 99)
            let zoom = try await call(.get, "\(Self.cairn)/metrics/series?run_ids=\(a)&keys=loss&buckets=50&min_x=100&max_x=149&x=step", nil)
            let zoomed = (zoom.json["series"] as? [[String: Any]])?.first
            #expect((zoomed?["first_x"] as? [NSNumber])?.map(\.intValue) == Array(100...149))
            let badAxis = try await call(.get, "\(Self.cairn)/metrics/series?run_ids=\(a)&keys=loss&x=epoch", nil)
            #expect(badAxis.status == 400)
            let tooMany = try await call(.get, "\(Self.cairn)/metrics/series?run_ids=\(a)&keys=loss&buckets=999999", nil)
            #expect(tooMany.status == 400)
            let noKeys = try await call(.get, "\(Self.cairn)/metrics/series?run_ids=\(a)", nil)
            #expect(noKeys.status == 400)
        }
    }

    @Test("The UI is served at / and /ui/ with its content type, nosniff and a strict CSP; other paths are 404s")
    func staticFiles() async throws {
        try await withApp { call in
            let index = try await call(.get, "/", nil)
            #expect(index.status == 200)
            #expect(index.text.contains("/ui/js/app.js"))
            #expect(index.headers[.contentType] == "text/html; charset=utf-8")
            #expect(index.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
            #expect(index.headers[.xContentTypeOptions] == "nosniff")
            let script = try await call(.get, "/ui/js/app.js", nil)
            #expect(script.status == 200)
            #expect(script.headers[.contentType] == "text/javascript; charset=utf-8")
            let css = try await call(.get, "/ui/app.css", nil)
            #expect(css.headers[.contentType] == "text/css; charset=utf-8")
            for path in ["/ui/../Package.swift", "/ui/%2e%2e/index.html", "/ui/js/none.js", "/ui/", "/ui//etc/passwd"] {
                let missing = try await call(.get, path, nil)
                #expect(missing.status == 404, "\(path)")
            }
        }
    }
}
