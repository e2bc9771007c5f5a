import Testing
@testable import CairnCore

@Suite("Validation rules")
struct ValidationTests {
    @Test("Keys MLflow accepts are accepted", arguments: ["loss", "val/acc", "a.b-c d:e_f", "naïve", "步骤", "x1"])
    func goodKeys(key: String) throws {
        try Validation.validateKey(key, kind: "metric")
    }

    @Test("Keys MLflow rejects are rejected", arguments: ["", "bad!", "a//b", "/abs", "trail/", "../up", "a/./b", "semi;colon", String(repeating: "k", count: 251)])
    func badKeys(key: String) {
        #expect(throws: CairnError.self) { try Validation.validateKey(key, kind: "metric") }
    }

    @Test("Experiment ids must be integers")
    func experimentIDs() throws {
        #expect(try Validation.parseExperimentID("42") == 42)
        #expect(throws: CairnError.self) { try Validation.parseExperimentID("abc") }
        #expect(throws: CairnError.self) { try Validation.parseExperimentID("-1") }
    }

    @Test("Page tokens round-trip and garbled ones are refused")
    func pageTokens() throws {
        #expect(try PageToken.decode(PageToken(offset: 17).encoded).offset == 17)
        #expect(PageToken(offset: 2).encoded == "eyJvZmZzZXQiOiAyfQ==")
        #expect(try PageToken.decode(nil).offset == 0)
        #expect(throws: CairnError.self) { try PageToken.decode("garbage!") }
        #expect(throws: CairnError.self) { try PageToken.decode("eyJvZmZzZXQiOiAtMX0=") }
    }

    @Test("The latest-value order is step, then timestamp, then value")
    func latestOrder() {
        let a = Metric(key: "m", value: 1, timestamp: 5, step: 2)
        #expect(a.isNewer(than: Metric(key: "m", value: 9, timestamp: 9, step: 1)))
        #expect(Metric(key: "m", value: 1, timestamp: 6, step: 2).isNewer(than: a))
        #expect(Metric(key: "m", value: 2, timestamp: 5, step: 2).isNewer(than: a))
        #expect(!Metric(key: "m", value: .nan, timestamp: 5, step: 2).isNewer(than: a))
    }
}

@Suite("JSON values")
struct JSONValueTests {
    @Test("Numbers keep their literal text, so int64 survives exactly")
    func int64() throws {
        let value = try JSONValue.parse(#"{"a": 9223372036854775807, "b": -1.5e3, "c": [true, null, "x\u00e9\n"]}"#)
        #expect(value["a"] == .number("9223372036854775807"))
        #expect(value["b"] == .number("-1.5e3"))
        #expect(value["c"] == .array([.bool(true), .null, .string("xé\n")]))
    }

    @Test("Malformed documents are refused", arguments: ["", "{", "{\"a\":}", "[1,]", "{\"a\":1} x", "\"\\x\"", "01a", "{'a':1}"])
    func malformed(text: String) {
        #expect(throws: JSONValue.SyntaxError.self) { try JSONValue.parse(text) }
    }

    @Test("The writer escapes strings and encodes non-finite doubles as protobuf JSON strings")
    func writer() {
        var w = JSONWriter()
        w.object { o in
            o.string("s", "a\"b\\c\u{01}")
            o.double("nan", .nan)
            o.double("inf", .infinity)
            o.double("ninf", -.infinity)
            o.double("x", 0.1)
            o.array("empty", [Int]()) { _, _ in }
            o.int("i", Int64.min)
        }
        #expect(w.string == #"{"s":"a\"b\\c\u0001","nan":"NaN","inf":"Infinity","ninf":"-Infinity","x":0.1,"i":-9223372036854775808}"#)
    }

    @Test("Integers are written digit by digit, exactly as their decimal form")
    func writerIntegers() {
        for value: Int64 in [0, 1, -1, 9, 10, -10, 1_763_900_000_000, .max, .min, .min + 1, 1_000_000_007] {
            var w = JSONWriter()
            w.int(value)
            #expect(w.string == String(value))
        }
    }

    @Test("Doubles are written as Swift's shortest round-trip text, the longest ones included")
    func writerDoubles() {
        let values: [Double] = [0, -0.0, 1, -1, 0.1, 1.0 / 3, -2.0 / 3, 1e-7, 1.5e-300, 1e21, 123_456_789.012_345_68,
                                .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude, -.leastNormalMagnitude,
                                .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .ulpOfOne, -2.2250738585072014e-308]
        for value in values {
            var w = JSONWriter()
            w.double(value)
            #expect(w.string == value.description)
            #expect(Double(w.string)?.bitPattern == value.bitPattern)
        }
    }
}
