import Foundation
import GRDB
import Synchronization

/// SQLite's `X REGEXP Y` calls `regexp(Y, X)`, which SQLite leaves undefined; every connection of
/// the store registers this one for the trace filters' `RLIKE`. As MLflow's own SQLite function
/// (Python's `re.search`): the pattern is found anywhere in the text, case-sensitively; a NULL
/// on either side and a pattern that does not compile match nothing.
enum SQLiteRegexp {
    /// Compiled patterns by their text (a query calls the function once per row with the same
    /// pattern); nil for one that does not compile.
    private static let compiled = Mutex<[String: NSRegularExpression?]>([:])

    static func expression(_ pattern: String) -> NSRegularExpression? {
        if let known = compiled.withLock({ $0[pattern] }) { return known }
        let expression = try? NSRegularExpression(pattern: pattern)
        compiled.withLock { cache in
            if cache.count >= 256 { cache.removeAll() }
            cache[pattern] = .some(expression)
        }
        return expression
    }

    static func matches(_ pattern: String, _ text: String) -> Bool {
        guard let expression = expression(pattern) else { return false }
        return expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    static let function = DatabaseFunction("regexp", argumentCount: 2, pure: true) { values in
        guard let pattern = String.fromDatabaseValue(values[0]), let text = String.fromDatabaseValue(values[1]) else { return false }
        return matches(pattern, text)
    }
}
