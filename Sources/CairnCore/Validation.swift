import Foundation

/// Limits and validation rules shared by every entry point (MLflow's, where MLflow has one).
///
/// One deliberate difference: MLflow silently truncates long param and tag values; Cairn never
/// alters what it acknowledges, so it stores them intact up to a documented limit and refuses
/// longer ones with `INVALID_PARAMETER_VALUE`.
public enum Limits {
    public static let maxKeyLength = 250
    public static let maxParamValueLength = 65_536
    public static let maxTagValueLength = 65_536
    public static let maxExperimentNameLength = 500
    public static let maxExperimentTagValueLength = 20_000
    public static let maxMetricsPerBatch = 1000
    public static let maxParamsPerBatch = 100
    public static let maxTagsPerBatch = 100
    public static let maxEntitiesPerBatch = 1000
    public static let maxBatchRequestBytes = 1_048_576
    public static let maxSearchResults = 50_000
    public static let defaultRunSearchResults = 1000
    public static let maxDatasetNameLength = 500
    public static let maxDatasetDigestLength = 36
    public static let maxDatasetSourceLength = 65_535
    public static let maxDatasetSchemaLength = 1_048_575
    public static let maxDatasetProfileLength = 16_777_215
    public static let maxInputTagKeyLength = 255
    public static let maxInputTagValueLength = 500
    public static let defaultSampledPoints = 320
    public static let maxSampledPoints = 2500
    /// Search filters (every search: runs, experiments, logged models, registry, the UI's table).
    /// These keep every accepted filter inside what the database's own parser and expression
    /// depth allow, on SQLite and PostgreSQL alike; beyond them a search is refused with a 400.
    public static let maxFilterLength = 65_536
    public static let maxFilterClauses = 200
    /// Parentheses and NOT nested inside each other.
    public static let maxFilterNesting = 16
    public static let maxFilterListItems = 1000
    /// Entries of one search's `order_by`.
    public static let maxOrderByClauses = 20
}

public enum Validation {
    /// Metric, param and tag keys: MLflow's `^[/\w.\- :]*$` (Unicode word characters), at most
    /// 250 characters, and a clean relative path (no empty, `.` or `..` components).
    public static func validateKey(_ key: String, kind: String) throws(CairnError) {
        if key.isEmpty {
            throw .invalidParameter("Invalid \(kind) name: the name is empty. Give every \(kind) a non-empty name.")
        }
        if key.count > Limits.maxKeyLength {
            throw .invalidParameter("Invalid \(kind) name '\(key.prefix(40))…': it has \(key.count) characters, the limit is \(Limits.maxKeyLength).")
        }
        for scalar in key.unicodeScalars where !isKeyCharacter(scalar) {
            throw .invalidParameter("Invalid \(kind) name '\(key)': names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colons (:) and slashes (/); '\(scalar)' is not allowed.")
        }
        let components = key.split(separator: "/", omittingEmptySubsequences: false)
        if components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
            throw .invalidParameter("Invalid \(kind) name '\(key)': it must be a normalized relative path (no leading, trailing or doubled '/', and no '.' or '..' parts).")
        }
    }

    private static func isKeyCharacter(_ s: Unicode.Scalar) -> Bool {
        switch s {
        case "/", ".", "-", " ", ":", "_": return true
        default:
            let p = s.properties
            return p.isAlphabetic || p.numericType != nil || p.generalCategory == .nonspacingMark
                || p.generalCategory == .spacingMark || p.generalCategory == .connectorPunctuation
        }
    }

    public static func validateValueLength(_ value: String, limit: Int, kind: String, key: String) throws(CairnError) {
        let length = value.count
        if length > limit {
            throw .invalidParameter("Invalid value for \(kind) '\(key)': it has \(length) characters, the limit is \(limit). Store long content as an artifact instead.")
        }
    }

    /// A name of only spaces is refused as missing (MLflow takes it); `parameter` names the field.
    public static func validateExperimentName(_ name: String, parameter: String = "name") throws(CairnError) {
        if name.trimmingCharacters(in: .whitespaces).isEmpty {
            throw .missingParameter(parameter)
        }
        if name.count > Limits.maxExperimentNameLength {
            throw .invalidParameter("Invalid experiment name: it has \(name.count) characters, the limit is \(Limits.maxExperimentNameLength).")
        }
    }

    /// Experiment ids are decimal integers.
    public static func parseExperimentID(_ id: String) throws(CairnError) -> Int64 {
        guard let value = Int64(id), value >= 0 else {
            throw .invalidParameter("Invalid experiment ID '\(id)'. Experiment ID must be a valid integer.")
        }
        return value
    }

    public static func validateTimestamp(_ value: Int64, parameter: String) throws(CairnError) {
        if value < 0 {
            throw .invalidParameter("Invalid value \(value) for parameter '\(parameter)': timestamps are milliseconds since 1970 and cannot be negative.")
        }
    }
}

