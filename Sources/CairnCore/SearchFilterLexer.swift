/// The character-level scanner behind `SearchFilterParser` and `OrderByParser`.
///
/// The filter language is small but context-sensitive (`-1` is a number in value position,
/// `a-b` is part of a key in identifier position), so instead of a separate token stream the
/// recursive-descent parser asks the scanner for the kind of token it expects next.
/// Positions are 0-based indices into `chars`; error messages show them 1-based.

/// An identifier as written, before per-target validation.
struct ScannedIdentifier {
    var entity: FilterEntity
    var key: String
    /// The identifier exactly as it appears in the source, for error messages.
    var text: String
    /// 0-based position of its first character.
    var position: Int
}

struct FilterScanner {
    let chars: [Character]
    var pos: Int = 0
    /// The start of every error message, e.g. `Invalid filter 'metrics.loss >'`.
    let errorPrefix: String

    init(_ text: String, errorPrefix: String) {
        self.chars = Array(text)
        self.errorPrefix = errorPrefix
    }

    // MARK: Character classes

    static func isWordChar(_ c: Character) -> Bool {
        c.isLetter || c.isNumber || c == "_" || c == "." || c == "-" || c == "/" || c == ":"
    }

    static func isDigit(_ c: Character) -> Bool {
        c.isASCII && c.isWholeNumber
    }

    static func isOperatorChar(_ c: Character) -> Bool {
        c == "=" || c == "!" || c == "<" || c == ">"
    }

    static func isStringQuote(_ c: Character) -> Bool {
        c == "'" || c == "\""
    }

    static func isIdentifierQuote(_ c: Character) -> Bool {
        c == "`" || c == "\""
    }

    // MARK: Position and errors

    var atEnd: Bool { pos >= chars.count }

    var current: Character? { pos < chars.count ? chars[pos] : nil }

    func char(at index: Int) -> Character? {
        index >= 0 && index < chars.count ? chars[index] : nil
    }

    mutating func skipWhitespace() {
        while let c = current, c.isWhitespace { pos += 1 }
    }

    /// "position N", 1-based.
    func position(_ index: Int) -> String { "position \(index + 1)" }

    /// `<prefix>: <detail>.`
    func error(_ detail: String) -> CairnError {
        .invalidParameter("\(errorPrefix): \(detail).")
    }

    /// The token starting at `index` as written (a whole word, quoted string, operator run or
    /// single character); nil at the end of the input.
    func tokenText(at index: Int) -> String? {
        guard let c = char(at: index) else { return nil }
        var end = index + 1
        if Self.isWordChar(c) {
            while let d = char(at: end), Self.isWordChar(d) { end += 1 }
        } else if Self.isStringQuote(c) || c == "`" {
            while let d = char(at: end), d != c { end += 1 }
            if end < chars.count { end += 1 }
        } else if Self.isOperatorChar(c) {
            while let d = char(at: end), Self.isOperatorChar(d) { end += 1 }
        }
        return String(chars[index..<end])
    }

    /// `, found 'X'` for the token at `index`, or nothing at the end of the input.
    func found(at index: Int) -> String {
        tokenText(at: index).map { ", found '\($0)'" } ?? ""
    }

    func text(from start: Int, to end: Int) -> String {
        String(chars[start..<min(end, chars.count)])
    }

    // MARK: Words and keywords

    /// The word (run of word characters) at the current position, without consuming it.
    func peekWord() -> String {
        var end = pos
        while let c = char(at: end), Self.isWordChar(c) { end += 1 }
        return String(chars[pos..<end])
    }

    /// Consumes and returns the word at the current position (possibly empty).
    mutating func scanWord() -> String {
        let word = peekWord()
        pos += word.count
        return word
    }

    /// The upper-cased word if it is plain ASCII (keywords are), else nil; so `ın` is not `IN`.
    static func keywordForm(_ word: String) -> String? {
        word.allSatisfy(\.isASCII) ? word.uppercased() : nil
    }

    /// Whether the next word (after whitespace) is `keyword`, case-insensitively. Does not consume.
    mutating func peekKeyword(_ keyword: String) -> Bool {
        skipWhitespace()
        return Self.keywordForm(peekWord()) == keyword
    }

    /// Consumes the next word (after whitespace) if it is `keyword`, case-insensitively.
    mutating func matchKeyword(_ keyword: String) -> Bool {
        guard peekKeyword(keyword) else { return false }
        pos += peekWord().count
        return true
    }

    // MARK: Quoted text

    /// Scans a quoted run starting at the current quote character and returns its contents
    /// (the text between the quotes, no escapes).
    mutating func scanQuoted(what: String) throws(CairnError) -> String {
        let start = pos
        let quote = chars[pos]
        var end = pos + 1
        while let c = char(at: end), c != quote { end += 1 }
        guard end < chars.count else {
            throw error("unterminated \(what): no closing \(quote) for the quote at \(position(start))")
        }
        pos = end + 1
        return String(chars[(start + 1)..<end])
    }

    // MARK: Identifiers

    static func entity(forPrefix prefix: String) -> FilterEntity? {
        switch prefix.lowercased() {
        case "metrics", "metric": .metric
        case "params", "param", "parameter", "parameters": .param
        case "tags", "tag": .tag
        case "attributes", "attribute", "attr", "run": .attribute
        case "datasets", "dataset": .dataset
        default: nil
        }
    }

    /// Scans `[prefix.]key`, where the key (or the whole unprefixed identifier) may be quoted
    /// with backticks or double quotes. `expectation` is the error detail used when no
    /// identifier is there at all, e.g. "expected a clause after 'AND'".
    mutating func scanIdentifier(expectation: String) throws(CairnError) -> ScannedIdentifier {
        skipWhitespace()
        let start = pos
        guard let first = current else {
            throw error("\(expectation) at \(position(pos))")
        }
        if Self.isIdentifierQuote(first) {
            let key = try scanQuoted(what: "identifier")
            guard !key.isEmpty else { throw error("empty identifier at \(position(start))") }
            return ScannedIdentifier(entity: .attribute, key: key, text: text(from: start, to: pos), position: start)
        }
        guard Self.isWordChar(first) else {
            throw error("\(expectation) at \(position(pos))\(found(at: pos))")
        }
        let word = scanWord()
        guard let dot = word.firstIndex(of: ".") else {
            return ScannedIdentifier(entity: .attribute, key: word, text: word, position: start)
        }
        let prefix = String(word[..<dot])
        guard let entity = Self.entity(forPrefix: prefix) else {
            throw error(
                "unknown entity type '\(prefix)' in '\(word)' at \(position(start)); "
                    + "valid prefixes are metrics, params, tags, attributes and datasets")
        }
        var key = String(word[word.index(after: dot)...])
        if key.isEmpty {
            guard let c = current, Self.isIdentifierQuote(c) else {
                throw error("expected a key after '\(word)' at \(position(pos))\(found(at: pos))")
            }
            let keyStart = pos
            key = try scanQuoted(what: "identifier")
            guard !key.isEmpty else { throw error("empty key after '\(word)' at \(position(keyStart))") }
        }
        return ScannedIdentifier(entity: entity, key: key, text: text(from: start, to: pos), position: start)
    }

    // MARK: Numbers

    /// Scans a number literal (`-1`, `0.5`, `.5`, `1e-3`, …) at the current position.
    /// Returns nil, consuming nothing, if no number starts here; throws if one starts but is
    /// malformed (`1.2.3`, `12abc`).
    mutating func scanNumber() throws(CairnError) -> (value: Double, text: String)? {
        let start = pos
        var i = pos
        if let c = char(at: i), c == "-" || c == "+" { i += 1 }
        var digits = 0
        while let c = char(at: i), Self.isDigit(c) { i += 1; digits += 1 }
        if char(at: i) == "." {
            var fraction = 0
            var j = i + 1
            while let c = char(at: j), Self.isDigit(c) { j += 1; fraction += 1 }
            // "1." is a number; a lone "." is not.
            if digits + fraction > 0 { i = j; digits += fraction }
        }
        guard digits > 0 else { return nil }
        if let e = char(at: i), e == "e" || e == "E" {
            var j = i + 1
            if let s = char(at: j), s == "-" || s == "+" { j += 1 }
            var exponent = 0
            while let c = char(at: j), Self.isDigit(c) { j += 1; exponent += 1 }
            if exponent > 0 { i = j }
        }
        if let next = char(at: i), Self.isWordChar(next) || Self.isStringQuote(next) || next == "`" {
            var end = i
            while let c = char(at: end), Self.isWordChar(c) { end += 1 }
            throw error("invalid number '\(text(from: start, to: max(end, i + 1)))' at \(position(start))")
        }
        let literal = text(from: start, to: i)
        guard let value = Double(literal) else {
            throw error("invalid number '\(literal)' at \(position(start))")
        }
        pos = i
        return (value, literal)
    }

    /// Whether a number may start at the current position (a digit, or a sign or dot before one).
    var atNumberStart: Bool {
        guard let c = current else { return false }
        if Self.isDigit(c) { return true }
        if c == "-" || c == "+" || c == "." {
            guard let d = char(at: pos + 1) else { return false }
            if Self.isDigit(d) { return true }
            if c != ".", d == ".", let e = char(at: pos + 2), Self.isDigit(e) { return true }
        }
        return false
    }
}
