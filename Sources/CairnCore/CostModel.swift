import Foundation

/// What compute costs (`cairn server --cost-model FILE`, JSON), applied to what `cairn run`
/// records of each run: its wall time and CPU time (metrics `cairn.wall_time_s`,
/// `cairn.cpu_time_s`) and its GPUs (tag `cairn.host.gpus`, names separated by `; `).
///
///     {"currency": "USD", "cpu_hour": 0.04, "gpu_hour": {"A100": 2.9, "T4": 0.35, "*": 1.0}}
///
/// A run costs CPU hours × `cpu_hour` plus, for each GPU, wall hours × the rate of the first
/// `gpu_hour` key its name contains (`*`: any other GPU). Runs that recorded no times have no cost.
public struct CostModel: Sendable, Codable, Equatable {
    public var currency: String
    public var cpuHour: Double
    public var gpuHour: [String: Double]

    public init(currency: String = "USD", cpuHour: Double = 0, gpuHour: [String: Double] = [:]) {
        self.currency = currency
        self.cpuHour = cpuHour
        self.gpuHour = gpuHour
    }

    enum CodingKeys: String, CodingKey {
        case currency, cpuHour = "cpu_hour", gpuHour = "gpu_hour"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        currency = try c.decodeIfPresent(String.self, forKey: .currency) ?? "USD"
        cpuHour = try c.decodeIfPresent(Double.self, forKey: .cpuHour) ?? 0
        gpuHour = try c.decodeIfPresent([String: Double].self, forKey: .gpuHour) ?? [:]
    }

    public static func parse(_ data: Data) throws(CairnError) -> CostModel {
        let model: CostModel
        do { model = try JSONDecoder().decode(CostModel.self, from: data) } catch {
            throw CairnError.invalidParameter("The cost model is not valid JSON of the form {\"currency\": \"USD\", \"cpu_hour\": 0.04, \"gpu_hour\": {\"A100\": 2.9, \"*\": 1.0}}: \(error).")
        }
        guard model.cpuHour >= 0, model.cpuHour.isFinite, model.gpuHour.values.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
            throw CairnError.invalidParameter("Cost model rates must be numbers of 0 or more.")
        }
        return model
    }

    /// The rate of one GPU by its name: the longest `gpu_hour` key it contains, else `*`, else 0.
    public func gpuRate(_ name: String) -> Double {
        let match = gpuHour.keys.filter { $0 != "*" && name.localizedCaseInsensitiveContains($0) }.max { $0.count < $1.count }
        return match.flatMap { gpuHour[$0] } ?? gpuHour["*"] ?? 0
    }

    /// nil when the run recorded neither time.
    public func cost(wallSeconds: Double?, cpuSeconds: Double?, gpus: String?) -> Double? {
        guard wallSeconds != nil || cpuSeconds != nil else { return nil }
        let names = (gpus ?? "").split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && $0 != "none" }
        let gpuCost = names.reduce(0.0) { $0 + gpuRate($1) } * (wallSeconds ?? 0) / 3600
        return (cpuSeconds ?? 0) / 3600 * cpuHour + gpuCost
    }
}

/// `GET /api/cairn/v1/cost`: one experiment's compute cost under the server's cost model.
public struct ExperimentCost: Sendable, Codable, Equatable {
    public var experimentId: String
    public var name: String
    public var currency: String
    /// Runs with a cost (they recorded their times), and all of them together.
    public var costedRuns: Int
    public var total: Double
    /// FINISHED runs: the ones that produced a result.
    public var finishedRuns: Int
    /// total / finished runs: what one useful run costs, failures included (nil without one).
    public var costPerEffectiveRun: Double?
    /// The experiment's tag `cairn.budget` (in the model's currency), and whether the total exceeds it.
    public var budget: Double?
    public var overBudget: Bool

    public init(experimentId: String, name: String, currency: String, costedRuns: Int, total: Double, finishedRuns: Int,
                costPerEffectiveRun: Double?, budget: Double?, overBudget: Bool) {
        self.experimentId = experimentId
        self.name = name
        self.currency = currency
        self.costedRuns = costedRuns
        self.total = total
        self.finishedRuns = finishedRuns
        self.costPerEffectiveRun = costPerEffectiveRun
        self.budget = budget
        self.overBudget = overBudget
    }
}
