import Foundation

/// Which runs of an experiment to keep: the experiment's tag `cairn.retention` (or the server's
/// default), clauses separated by `;`. A run is kept when any rule keeps it; every other
/// finished, failed or killed run may be deleted (and its artifacts then collected by `cairn gc`).
///
///     keep_last=20          the 20 newest runs (by start time)
///     keep_days=30          runs started in the last 30 days
///     keep_tag=keep         runs with that tag (any value but "false"); `keep` is always honoured
///     keep_top=5:val_acc    the 5 best runs by that metric's latest value (repeatable)
///
/// Never deleted, whatever the rules: runs still running or scheduled, and runs a registered
/// model version comes from (retention never breaks a registered model).
public struct RetentionPolicy: Sendable, Equatable {
    public var keepLast: Int?
    public var keepDays: Int?
    public var keepTags: [String] = ["keep"]
    public var keepTop: [(count: Int, metric: String)] = []

    public static let tag = "cairn.retention"

    public init() {}

    public static func == (a: RetentionPolicy, b: RetentionPolicy) -> Bool {
        a.keepLast == b.keepLast && a.keepDays == b.keepDays && a.keepTags == b.keepTags
            && a.keepTop.map { "\($0.count):\($0.metric)" } == b.keepTop.map { "\($0.count):\($0.metric)" }
    }

    public static func parse(_ text: String) throws(CairnError) -> RetentionPolicy {
        var policy = RetentionPolicy()
        let clauses = text.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !clauses.isEmpty else {
            throw CairnError.invalidParameter("A retention rule needs at least one clause, e.g. 'keep_last=20; keep_days=30; keep_top=5:val_acc'.")
        }
        for clause in clauses {
            guard let eq = clause.firstIndex(of: "=") else {
                throw CairnError.invalidParameter("Retention clause '\(clause)' has no '='. Write keep_last=N, keep_days=D, keep_tag=KEY or keep_top=K:metric.")
            }
            let name = clause[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            let value = clause[clause.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            switch name {
            case "keep_last":
                guard let n = Int(value), n >= 0 else { throw CairnError.invalidParameter("keep_last takes a number of runs, not '\(value)'.") }
                policy.keepLast = n
            case "keep_days":
                guard let n = Int(value), n >= 0 else { throw CairnError.invalidParameter("keep_days takes a number of days, not '\(value)'.") }
                policy.keepDays = n
            case "keep_tag":
                guard !value.isEmpty else { throw CairnError.invalidParameter("keep_tag takes a tag key, e.g. keep_tag=pinned.") }
                if !policy.keepTags.contains(value) { policy.keepTags.append(value) }
            case "keep_top":
                let parts = value.split(separator: ":", maxSplits: 1).map(String.init)
                guard parts.count == 2, let k = Int(parts[0]), k > 0, !parts[1].isEmpty else {
                    throw CairnError.invalidParameter("keep_top takes K:metric, e.g. keep_top=5:val_acc, not '\(value)'.")
                }
                policy.keepTop.append((k, parts[1].hasPrefix("metrics.") ? String(parts[1].dropFirst(8)) : parts[1]))
            default:
                throw CairnError.invalidParameter("Unknown retention clause '\(name)'. Use keep_last=N, keep_days=D, keep_tag=KEY or keep_top=K:metric.")
            }
        }
        return policy
    }
}
