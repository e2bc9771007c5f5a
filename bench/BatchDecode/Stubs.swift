// Stand-ins for the CairnCore names LogBatchDecoder.swift uses, so the decoder compiles alone
// (bench/batch-decode). `Metric` has the same stored fields as CairnCore's, so copying one costs
// the same.
struct Metric {
    var key: String
    var value: Double
    var timestamp: Int64
    var step: Int64
    var runID: String?
    var modelID: String?
    var datasetName: String?
    var datasetDigest: String?

    init(key: String, value: Double, timestamp: Int64, step: Int64) {
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.step = step
    }
}

struct Param {
    var key: String
    var value: String
    init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }
}

typealias Tag = Param

struct CairnError: Error {
    static func missingParameter(_ name: String) -> CairnError { CairnError() }
}
