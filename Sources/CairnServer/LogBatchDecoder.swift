import CairnCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The fields of a `runs/log-batch` body, decoded without building a JSON tree.
struct LogBatch: Sendable {
    var runID: String?
    var runUUID: String?
    var metrics: [Metric] = []
    var params: [Param] = []
    var tags: [Tag] = []

    /// `run_id`, or MLflow's older `run_uuid`, whichever is set and not empty.
    func resolvedRunID() throws -> String {
        if let runID, !runID.isEmpty { return runID }
        if let runUUID, !runUUID.isEmpty { return runUUID }
        throw CairnError.missingParameter("run_id")
    }
}

/// A fast path for the hottest request: `runs/log-batch` bodies in the shape every client
/// sends (`run_id`, and metrics with `key`, numeric `value`, integer `timestamp` and `step`;
/// params and tags with string `key` and `value`) are decoded straight from the bytes.
///
/// Anything else — another field, a repeated field, an escape or a non-ASCII character in a
/// string, a number written as a string, `null`, malformed JSON — answers nil, and the
/// request takes the general path (`JSONValue` and `RequestFields`), which owns every rule
/// and error message. So this decoder can only make a request faster, never change its answer.
enum LogBatchDecoder {
    static func decode(_ bytes: UnsafeRawBufferPointer) -> LogBatch? {
        var scanner = Scanner(bytes: bytes)
        return scanner.batch()
    }

    /// The member names the decoder knows, matched by their bytes (no string is made for a
    /// name); `other` is any other name, or a name that is not a plain string.
    private enum Name: UInt16 {
        case runID = 1, runUUID = 2, metrics = 4, params = 8, tags = 16, key = 32, value = 64, timestamp = 128, step = 256, other = 512

        init(_ text: UnsafeRawBufferPointer) {
            func matches(_ word: StaticString) -> Bool {
                guard word.utf8CodeUnitCount == text.count else { return false }
                let start = word.utf8Start
                for i in 0..<text.count where text[i] != start[i] { return false }
                return true
            }
            switch text.count {
            case 3: self = matches("key") ? .key : .other
            case 4: self = matches("step") ? .step : matches("tags") ? .tags : .other
            case 5: self = matches("value") ? .value : .other
            case 6: self = matches("run_id") ? .runID : matches("params") ? .params : .other
            case 7: self = matches("metrics") ? .metrics : .other
            case 8: self = matches("run_uuid") ? .runUUID : .other
            case 9: self = matches("timestamp") ? .timestamp : .other
            default: self = .other
            }
        }
    }

    private struct Scanner {
        let bytes: UnsafeRawBufferPointer
        var index = 0
        /// Metric keys repeat in a batch; the last few are reused instead of decoded again,
        /// found by their bytes.
        var recentKeys: [(key: String, bytes: [UInt8])] = []
        /// The slot in `recentKeys` of the last key decoded, or -1.
        var lastKey = -1

        init(bytes: UnsafeRawBufferPointer) {
            self.bytes = bytes
        }

        mutating func batch() -> LogBatch? {
            var batch = LogBatch()
            var seen: UInt16 = 0
            guard open(UInt8(ascii: "{")) else { return nil }
            var first = true
            while let name = nextMember(first: &first) {
                guard seen & name.rawValue == 0 else { return nil }
                seen |= name.rawValue
                switch name {
                case .runID: guard let id = plainString() else { return nil }
                    batch.runID = id
                case .runUUID: guard let id = plainString() else { return nil }
                    batch.runUUID = id
                case .metrics:
                    guard open(UInt8(ascii: "[")) else { return nil }
                    // A metric takes at least 40 bytes of JSON; MLflow takes at most 1,000 a batch.
                    batch.metrics.reserveCapacity(min(1_000, (bytes.count - index) / 40))
                    var firstElement = true
                    while let more = nextElement(first: &firstElement) {
                        guard more, let metric = metric() else { return nil }
                        batch.metrics.append(metric)
                    }
                    guard closed else { return nil }
                case .params, .tags:
                    guard open(UInt8(ascii: "[")) else { return nil }
                    var firstElement = true
                    while let more = nextElement(first: &firstElement) {
                        guard more, let (key, value) = pair() else { return nil }
                        if name == .params { batch.params.append(Param(key, value)) } else { batch.tags.append(Tag(key, value)) }
                    }
                    guard closed else { return nil }
                default: return nil
                }
            }
            guard closed else { return nil }
            skipSpace()
            return index == bytes.count ? batch : nil
        }

        mutating func metric() -> Metric? {
            var key: String?
            var value: Double?
            var timestamp: Int64?
            var step: Int64?
            guard open(UInt8(ascii: "{")) else { return nil }
            var first = true
            while let next = nextMember(first: &first) {
                switch next {
                case .key where key == nil: key = metricKey(); if key == nil { return nil }
                case .value where value == nil: value = double(); if value == nil { return nil }
                case .timestamp where timestamp == nil: timestamp = integer(); if timestamp == nil { return nil }
                case .step where step == nil: step = integer(); if step == nil { return nil }
                default: return nil
                }
            }
            // An empty key is MLflow's "missing": the general path words that.
            guard closed, let key, !key.isEmpty, let value, let timestamp else { return nil }
            return Metric(key: key, value: value, timestamp: timestamp, step: step ?? 0)
        }

        mutating func pair() -> (String, String)? {
            var key: String?
            var value: String?
            guard open(UInt8(ascii: "{")) else { return nil }
            var first = true
            while let next = nextMember(first: &first) {
                switch next {
                case .key where key == nil: key = plainString(); if key == nil { return nil }
                case .value where value == nil: value = plainString(); if value == nil { return nil }
                default: return nil
                }
            }
            guard closed, let key, !key.isEmpty, let value else { return nil }
            return (key, value)
        }

        /// Set when the last `nextMember`/`nextElement` that answered nil found the closing
        /// bracket (rather than malformed input).
        var closed = false

        mutating func open(_ bracket: UInt8) -> Bool {
            skipSpace()
            return take(bracket)
        }

        /// The name of the next member of an object (positioned before its value); nil at the
        /// closing brace (`closed` true) or on malformed input (`closed` false); `other` for a
        /// name the decoder does not know or a bad one (every caller then gives up).
        mutating func nextMember(first: inout Bool) -> Name? {
            closed = false
            skipSpace()
            if first {
                first = false
                if take(UInt8(ascii: "}")) { closed = true; return nil }
            } else if !take(UInt8(ascii: ",")) {
                closed = take(UInt8(ascii: "}"))
                return nil
            }
            skipSpace()
            guard let range = plainStringRange() else { return .other }
            skipSpace()
            guard take(UInt8(ascii: ":")) else { return .other }
            skipSpace()
            return Name(UnsafeRawBufferPointer(rebasing: bytes[range]))
        }

        /// true when another element follows (positioned before it); nil at the closing
        /// bracket (`closed` true) or on malformed input (`closed` false).
        mutating func nextElement(first: inout Bool) -> Bool? {
            closed = false
            skipSpace()
            if first {
                first = false
                if take(UInt8(ascii: "]")) { closed = true; return nil }
                return true
            }
            if take(UInt8(ascii: ",")) {
                skipSpace()
                return true
            }
            closed = take(UInt8(ascii: "]"))
            return nil
        }

        /// A string of printable ASCII without escapes, or nil.
        mutating func plainStringRange() -> Range<Int>? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    return start..<(index - 1)
                }
                if byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x80 { return nil }
                index += 1
            }
            return nil
        }

        mutating func plainString() -> String? {
            guard let range = plainStringRange() else { return nil }
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
        }

        mutating func metricKey() -> String? {
            guard let range = plainStringRange() else { return nil }
            let text = UnsafeRawBufferPointer(rebasing: bytes[range])
            func matches(_ slot: Int) -> Bool {
                guard recentKeys[slot].bytes.count == text.count else { return false }
                return text.isEmpty || recentKeys[slot].bytes.withUnsafeBytes { memcmp($0.baseAddress!, text.baseAddress!, text.count) == 0 }
            }
            // The key before and the one that followed it (`KeySlots`' two guesses), then the rest.
            if lastKey >= 0 {
                if matches(lastKey) { return recentKeys[lastKey].key }
                let next = lastKey + 1 == recentKeys.count ? 0 : lastKey + 1
                if matches(next) {
                    lastKey = next
                    return recentKeys[next].key
                }
            }
            for slot in recentKeys.indices where matches(slot) {
                lastKey = slot
                return recentKeys[slot].key
            }
            let key = String(decoding: text, as: UTF8.self)
            if recentKeys.count == 16 { recentKeys.removeFirst() }
            recentKeys.append((key, Array(text)))
            lastKey = recentKeys.count - 1
            return key
        }

        /// The extent of a JSON number (RFC 8259 grammar) and whether it is an integer literal.
        mutating func numberRange() -> (Range<Int>, isInteger: Bool)? {
            let start = index
            _ = take(UInt8(ascii: "-"))
            guard index < bytes.count else { return nil }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
            } else {
                guard digits() > 0 else { return nil }
            }
            var isInteger = true
            if take(UInt8(ascii: ".")) {
                isInteger = false
                guard digits() > 0 else { return nil }
            }
            if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
                isInteger = false
                index += 1
                if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
                guard digits() > 0 else { return nil }
            }
            return (start..<index, isInteger)
        }

        /// A JSON number as the nearest double (`strtod`, correctly rounded), or nil when it is
        /// not finite. The number is read from a copy on the stack, not through a `String`;
        /// should `strtod` not read it to its end (a locale with another decimal point, were
        /// one ever set in the process), Swift's own parsing reads it.
        mutating func double() -> Double? {
            guard let (range, _) = numberRange() else { return nil }
            let text = UnsafeRawBufferPointer(rebasing: bytes[range])
            let value: Double? = text.count > 63 ? nil : withUnsafeTemporaryAllocation(of: CChar.self, capacity: text.count + 1) { buffer in
                for i in 0..<text.count { buffer[i] = CChar(bitPattern: text[i]) }
                buffer[text.count] = 0
                var end: UnsafeMutablePointer<CChar>?
                let value = strtod(buffer.baseAddress!, &end)
                return end == buffer.baseAddress! + text.count ? value : nil
            }
            guard let value = value ?? Double(String(decoding: text, as: UTF8.self)), value.isFinite else { return nil }
            return value
        }

        /// An integer literal that fits in Int64 (others take the general path).
        mutating func integer() -> Int64? {
            guard let (range, isInteger) = numberRange(), isInteger, range.count <= 20 else { return nil }
            var value: Int64 = 0
            var position = range.lowerBound
            let negative = bytes[position] == UInt8(ascii: "-")
            if negative { position += 1 }
            while position < range.upperBound {
                let digit = Int64(bytes[position] &- UInt8(ascii: "0"))
                let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = shifted.addingReportingOverflow(digit)
                if overflow1 || overflow2 { return nil }
                value = sum
                position += 1
            }
            return negative ? -value : value
        }

        mutating func digits() -> Int {
            let start = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                index += 1
            }
            return index - start
        }

        mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        mutating func skipSpace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x0A, 0x0D, 0x09: index += 1
                default: return
                }
            }
        }
    }
}
