import Foundation

/// The one rule for the JSON type of a request field, shared by the server's request decoding
/// and `cairn run`'s relay, with MLflow's wording.
///
/// MLflow parses a body as protobuf JSON and, where that fails, checks each field's type:
/// a string field takes only a JSON string; an int64 field a JSON number with an integral
/// value or a decimal string (`"3"`); a double field a number, a numeric string or
/// `"NaN"`/`"Infinity"`/`"-Infinity"`; a bool field only `true`/`false`. Anything else is
/// refused with `Invalid value <json> for parameter '<field>' supplied: …`. Where MLflow
/// instead stores a coerced value (a bool or 3.5 in a number field becomes 1 or 0), Cairn
/// refuses too: a wrong type is never coerced.
public enum WireField {
    /// MLflow's message for a value of the wrong type, e.g. `Invalid value 31 for parameter
    /// 'run_id' supplied:  Hint: Value was of type 'int'. See the API docs for more
    /// information about request parameters.`
    public static func invalid(_ field: String, _ value: JSONValue) -> CairnError {
        .invalidParameter("Invalid value \(shown(value)) for parameter '\(field)' supplied:  Hint: Value was of type '\(pythonType(value))'. See the API docs for more information about request parameters.")
    }

    public static func string(_ value: JSONValue, field: String) throws(CairnError) -> String {
        guard case .string(let text) = value else { throw invalid(field, value) }
        return text
    }

    /// A JSON number with an integral value (`3`, `3.0`, `1e3`), or a string protobuf reads as
    /// one: a decimal (`"3"`) or a number with an integral value (`"3.0"`, `"1e3"`), without
    /// spaces.
    public static func int64(_ value: JSONValue, field: String) throws(CairnError) -> Int64 {
        switch value {
        case .string(let text):
            guard !text.contains(" ") else { break }
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if let number = Int64(trimmed) { return number }
            if let d = pythonFloat(trimmed), d.isFinite, d.rounded() == d, let number = Int64(exactly: d) { return number }
        case .number(let text):
            if let number = Int64(text) { return number }
            if let d = Double(text), d.rounded() == d, let number = Int64(exactly: d) { return number }
        default:
            break
        }
        throw invalid(field, value)
    }

    /// A JSON number, or a string Python's `float()` reads (as protobuf does): a numeric string
    /// (`"2.5"`, `" 2 "`, `"1e400"` which is infinite), MLflow's `"NaN"`, `"Infinity"`,
    /// `"-Infinity"` and Python's `inf`/`nan` spellings. A JSON number too large for a double
    /// is refused, as protobuf refuses it.
    public static func double(_ value: JSONValue, field: String) throws(CairnError) -> Double {
        switch value {
        case .number(let text):
            if let number = Double(text), number.isFinite { return number }
        case .string(let text):
            if let number = pythonFloat(text) { return number }
        default:
            break
        }
        throw invalid(field, value)
    }

    /// Python's `float(text)`: surrounding whitespace ignored, `inf`, `infinity` and `nan` in
    /// any case with an optional sign, else a decimal number (no hexadecimal, unlike `strtod`).
    static func pythonFloat(_ text: String) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        var unsigned = Substring(trimmed)
        var sign = 1.0
        if let first = unsigned.first, first == "+" || first == "-" {
            sign = first == "-" ? -1 : 1
            unsigned = unsigned.dropFirst()
        }
        switch unsigned.lowercased() {
        case "inf", "infinity": return sign * .infinity
        case "nan": return .nan
        default: break
        }
        guard !unsigned.isEmpty, unsigned.allSatisfy({ $0.isASCII && ($0.isNumber || "+-.eE".contains($0)) }) else { return nil }
        return Double(trimmed)
    }

    public static func bool(_ value: JSONValue, field: String) throws(CairnError) -> Bool {
        guard case .bool(let flag) = value else { throw invalid(field, value) }
        return flag
    }

    /// The value as Python's `json.dumps` shows it (compact), cut at 80 characters.
    static func shown(_ value: JSONValue) -> String {
        var writer = JSONWriter()
        writer.value(value)
        let text = writer.string
        return text.count > 80 ? String(text.prefix(80)) + "…" : text
    }

    /// The name of the Python type `json.loads` makes of the value, as MLflow's hint shows it.
    static func pythonType(_ value: JSONValue) -> String {
        switch value {
        case .null: return "NoneType"
        case .bool: return "bool"
        case .number(let n): return n.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) ? "float" : "int"
        case .string: return "str"
        case .array: return "list"
        case .object: return "dict"
        }
    }
}
