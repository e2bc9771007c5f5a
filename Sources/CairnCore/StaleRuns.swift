import Foundation

/// When a run still marked `RUNNING` has stopped without saying so (a killed job, a lost node).
///
/// A run's last activity is its newest metric timestamp, else its start time: training jobs log
/// metrics as they go (and `cairn run` logs system metrics every few seconds), and deriving it
/// costs the write path nothing. A `RUNNING` run whose last activity is older than the stale
/// threshold (`cairn server --stale-after`, default 2 h) is stale.
public enum StaleRuns {
    /// The default threshold: 2 hours.
    public static let defaultAfterMillis: Int64 = 2 * 3_600_000
    /// The run tag that says when the server sent `run.stale` for the run (once per run).
    public static let notifiedTag = "cairn.stale.notified_at"

    public static func lastActivity(startTime: Int64?, metricTimestamps: some Sequence<Int64>) -> Int64? {
        let newest = metricTimestamps.max()
        switch (startTime, newest) {
        case let (start?, metric?): return Swift.max(start, metric)
        case let (start?, nil): return start
        case let (nil, metric?): return metric
        case (nil, nil): return nil
        }
    }

    public static func isStale(status: RunStatus, lastActivity: Int64?, now: Int64, afterMillis: Int64) -> Bool {
        guard status == .running, let lastActivity else { return false }
        return now - lastActivity > afterMillis
    }

    /// `90m`, `2h`, `1d`, `45s` or plain milliseconds → milliseconds; nil when not a positive duration.
    public static func parseDuration(_ text: String) -> Int64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count)
            if suffix == "s", number.hasSuffix("m") { continue }  // "ms" is matched first; "5ms" must not read as "5m" + "s"
            guard let value = Double(number), value > 0, value.isFinite else { return nil }
            return Int64(value * Double(factor))
        }
        guard let millis = Int64(trimmed), millis > 0 else { return nil }
        return millis
    }
}
