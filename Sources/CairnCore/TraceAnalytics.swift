import Foundation

/// The trace metadata that MLflow 3.17.2's SQL store keeps in columns of its own and writes
/// back as metadata (`trace_analytics.py`): the session (`mlflow.trace.session`), token usage
/// (`mlflow.trace.tokenUsage`) and cost (`mlflow.trace.cost`). Cairn keeps them as metadata
/// rows, written in the form MLflow answers them, so that reads, filters and trace metrics
/// give MLflow's answers.
public enum TraceAnalytics {
    /// The keys of token usage and of cost, in the order MLflow writes them.
    public static let tokenKeys = ["input_tokens", "output_tokens", "total_tokens", "cache_read_input_tokens",
                                   "cache_creation_input_tokens", "cache_creation_input_tokens_above_1hr"]
    public static let costKeys = ["input_cost", "output_cost", "total_cost"]

    /// The span attributes MLflow takes a trace's session from (the first span that has one).
    public static let sessionAttributes = ["session.id", "gen_ai.conversation.id"]

    /// Token usage and cost: compared only whole (`=`, `!=`) or for presence.
    public static func isReserved(_ key: String) -> Bool {
        key == TraceKey.tokenUsage || key == TraceKey.cost
    }

    /// The value MLflow stores and answers for reserved metadata `key` given `value`: the
    /// known keys of the JSON object, in MLflow's order, token counts as integers and costs
    /// as floats (Python's `json.dumps`); nil when nothing usable is left (MLflow then keeps
    /// no such metadata). Other keys are ignored.
    public static func stored(_ key: String, _ value: String) -> String? {
        canonical(key, value, strict: false)
    }

    /// `value` as a filter on reserved metadata `key` matches a stored value only when it is
    /// written exactly as MLflow writes it and names only known keys (MLflow's rule); nil
    /// when it can match nothing.
    public static func filterValue(_ key: String, _ value: String) -> String? {
        guard let canonical = canonical(key, value, strict: true), canonical == value else { return nil }
        return canonical
    }

    static func canonical(_ key: String, _ value: String, strict: Bool) -> String? {
        guard case .object(let members)? = try? JSONValue.parse(Array(value.utf8)) else { return nil }
        let keys = key == TraceKey.tokenUsage ? tokenKeys : costKeys
        if strict, !members.allSatisfy({ keys.contains($0.0) }) { return nil }
        let given = Dictionary(members, uniquingKeysWith: { _, last in last })
        var out: [(String, JSONValue)] = []
        for name in keys {
            guard let item = given[name] else { continue }
            let number = key == TraceKey.tokenUsage ? tokenCount(item) : finiteFloat(item)
            if let number { out.append((name, .number(number))) }
        }
        return out.isEmpty ? nil : MLflowSpanDocument.pythonJSON(.object(out))
    }

    /// A token count as MLflow reads it (`token_count_or_none`): an integral number (or its
    /// text) within 64 bits; not a bool.
    static func tokenCount(_ value: JSONValue) -> String? {
        guard let text = numberText(value) else { return nil }
        if let whole = Int64(text) { return String(whole) }
        guard let decimal = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")), decimal.isFinite else { return nil }
        var rounded = Decimal()
        var copy = decimal
        NSDecimalRound(&rounded, &copy, 0, .plain)
        guard rounded == decimal, let whole = Int64(exactly: NSDecimalNumber(decimal: rounded).doubleValue),
              Decimal(whole) == rounded else { return nil }
        return String(whole)
    }

    /// A cost as MLflow reads it (`finite_float_or_none`): a finite float, written as Python
    /// writes floats.
    static func finiteFloat(_ value: JSONValue) -> String? {
        guard let text = numberText(value), let number = Double(text), number.isFinite else { return nil }
        return pythonRepr(number)
    }

    /// A JSON number, or a string holding one (Python converts both), as text.
    static func numberText(_ value: JSONValue) -> String? {
        switch value {
        case .number(let n): return n
        case .string(let s): return s.trimmingCharacters(in: .whitespaces)
        default: return nil
        }
    }

    /// `repr(float)` in Python: the shortest digits that read back as `value`, in fixed
    /// notation for exponents from -4 to 15 and as `1e-05`/`1.5e+16` otherwise.
    public static func pythonRepr(_ value: Double) -> String {
        let sign = value.sign == .minus ? "-" : ""
        if value == 0 { return sign + "0.0" }
        // Swift's description has the same shortest digits; only the layout differs.
        let text = value.magnitude.description
        let parts = text.split(separator: "e", maxSplits: 1)
        let mantissa = String(parts[0])
        let exponent = parts.count > 1 ? Int(parts[1].replacingOccurrences(of: "+", with: ""))! : 0
        let dot = mantissa.firstIndex(of: ".") ?? mantissa.endIndex
        var digits = mantissa.replacingOccurrences(of: ".", with: "")
        var point = mantissa.distance(from: mantissa.startIndex, to: dot) + exponent
        while digits.hasPrefix("0") {
            digits.removeFirst()
            point -= 1
        }
        while digits.hasSuffix("0") { digits.removeLast() }
        let scientific = point - 1
        if scientific >= -4 && scientific < 16 {
            if point <= 0 { return sign + "0." + String(repeating: "0", count: -point) + digits }
            if point >= digits.count { return sign + digits + String(repeating: "0", count: point - digits.count) + ".0" }
            return sign + digits.prefix(point) + "." + digits.dropFirst(point)
        }
        let rest = digits.dropFirst()
        let power = String(abs(scientific))
        return sign + digits.prefix(1) + (rest.isEmpty ? "" : "." + rest) + "e" + (scientific < 0 ? "-" : "+")
            + (power.count < 2 ? "0" + power : power)
    }

    /// The token usage (`key` = `TraceKey.tokenUsage`) or cost (`TraceKey.cost`) MLflow's
    /// store gives a trace from its spans' `mlflow.chat.tokenUsage` or `mlflow.llm.cost`
    /// attributes (`aggregate_usage_from_span_nodes`, `aggregate_cost_from_span_nodes`): summed
    /// over the spans that have one and no ancestor that has one (an autolog that sets the
    /// total on a parent span is not counted twice); input, output and total always, the
    /// cache token counts when a counted span has them. Merged over `current` (the value the
    /// trace has: a key the spans do not give stays), in the stored form; nil when no span
    /// has the attribute.
    public static func fromSpans(_ key: String, _ spans: [JSONValue], current: String?) -> String? {
        let attribute = key == TraceKey.tokenUsage ? MLflowSpanDocument.tokenUsageKey : MLflowSpanDocument.costKey
        let required = key == TraceKey.tokenUsage ? Array(tokenKeys.prefix(3)) : costKeys
        var data: [String: JSONValue] = [:]
        var children: [String: [String]] = [:]
        var ids: [String] = []
        var parents: [String: String] = [:]
        for span in spans {
            let id = MLflowSpanDocument.text(span["span_id"])
            if parents[id] == nil { ids.append(id) }
            parents[id] = MLflowSpanDocument.text(span["parent_span_id"])
            data[id] = MLflowSpanDocument.objectAttribute(MLflowSpanDocument.attributes(span)[attribute])
        }
        var roots: [String] = []
        for id in ids {
            if let parent = parents[id], !parent.isEmpty, parents[parent] != nil { children[parent, default: []].append(id) } else { roots.append(id) }
        }
        var totals: [String: Double] = [:]
        var found = false
        var stack = roots.map { ($0, false) }
        while let (id, ancestorHasData) = stack.popLast() {
            let own = data[id] ?? nil
            if let own, !ancestorHasData {
                found = true
                for name in key == TraceKey.tokenUsage ? tokenKeys : costKeys {
                    let value = own[name].flatMap { item -> Double? in
                        if case .number(let text) = item { return Double(text) }
                        return nil
                    }
                    if let value { totals[name, default: 0] += value } else if required.contains(name) { totals[name, default: 0] += 0 }
                }
            }
            stack += (children[id] ?? []).map { ($0, ancestorHasData || own != nil) }
        }
        guard found else { return nil }
        var merged: [(String, JSONValue)] = []
        let before = current.flatMap { try? JSONValue.parse($0) }
        for name in key == TraceKey.tokenUsage ? tokenKeys : costKeys {
            if let total = totals[name] {
                merged.append((name, .number(key == TraceKey.tokenUsage && total == total.rounded() && abs(total) < 9e15 ? String(Int64(total)) : String(total))))
            } else if let kept = before?[name] {
                merged.append((name, kept))
            }
        }
        return stored(key, MLflowSpanDocument.pythonJSON(.object(merged)))
    }

    /// The session MLflow gives a trace from its spans: the `session.id` (or
    /// `gen_ai.conversation.id`) attribute of the first span that has one, a string as it is,
    /// any other value as its JSON text.
    public static func session(_ spans: [JSONValue]) -> String? {
        for span in spans {
            let attributes = MLflowSpanDocument.attributes(span)
            for key in sessionAttributes {
                guard let value = MLflowSpanDocument.decoded(attributes[key]) else { continue }
                switch value {
                case .string(let s) where !s.isEmpty:
                    return s
                case .string, .null:
                    continue
                default:
                    return MLflowSpanDocument.pythonJSON(value)
                }
            }
        }
        return nil
    }
}
