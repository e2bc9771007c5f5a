import Foundation

/// The readable output of `cairn-load run`: one line per phase as it ends, a table at the end.
enum Report {
    static func number(_ value: Double?, decimals: Int = 1) -> String {
        guard let value else { return "n/a" }
        return String(format: "%.\(decimals)f", value)
    }

    static func printLine(_ record: PhaseRecord) {
        var line = "[\(record.scenario) \(record.name)] \(record.ok)/\(record.target_operations) ok over \(record.connections) "
            + "connection(s) in \(number(record.wall_s, decimals: 2)) s = \(number(record.operations_per_s))/s"
        if let points = record.points_per_s { line += " (\(Int(points)) points/s)" }
        line += "; p50 \(number(record.latency.p50_ms, decimals: 2)) ms p99 \(number(record.latency.p99_ms, decimals: 2)) ms"
            + " max \(number(record.latency.max_ms, decimals: 2)) ms; failed \(record.failed)"
        if let cpu = record.server_cpu_ms_per_operation { line += "; server CPU \(number(cpu, decimals: 3)) ms/op" }
        if let peak = record.server_rss_peak_mib { line += ", RSS peak \(number(peak)) MiB" }
        line += "; client CPU \(number(record.client_cpu_ms_per_operation, decimals: 3)) ms/op"
        if record.timed_out { line += "; HIT THE TIME BOUND" }
        print(line)
        fflush(nil)  // every stream: `stdout` itself is not concurrency-safe to name
    }

    static func table(_ records: [PhaseRecord]) -> String {
        let header = ["phase", "conns", "ok", "failed", "ops/s", "p50 ms", "p99 ms", "max ms", "server CPU ms/op", "server RSS peak MiB", "client CPU ms/op"]
        let rows = records.map { r in
            ["\(r.scenario) \(r.name)", String(r.connections), String(r.ok), String(r.failed) + (r.timed_out ? " (time bound)" : ""),
             number(r.operations_per_s), number(r.latency.p50_ms, decimals: 2), number(r.latency.p99_ms, decimals: 2),
             number(r.latency.max_ms, decimals: 2), number(r.server_cpu_ms_per_operation, decimals: 3),
             number(r.server_rss_peak_mib), number(r.client_cpu_ms_per_operation, decimals: 3)]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                column == 0 ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  ")
        }
        return ([line(header), line(widths.map { String(repeating: "-", count: $0) })] + rows.map(line)).joined(separator: "\n")
    }
}
