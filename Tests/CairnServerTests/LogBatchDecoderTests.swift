import CairnCore
import Foundation
@testable import CairnServer
import Testing

/// The log-batch fast path may only make requests faster: whenever it answers, its answer is
/// exactly the general decoder's; everything unusual is left to the general path.
@Suite("Log-batch fast decoder")
struct LogBatchDecoderTests {
    func fast(_ body: String) -> LogBatch? {
        Array(body.utf8).withUnsafeBytes { LogBatchDecoder.decode($0) }
    }

    func general(_ body: String) throws -> LogBatch {
        try MLflowTrackingAPI.decodeLogBatch(RequestFields(json: JSONValue.parse(Array(body.utf8))))
    }

    func expectSame(_ a: LogBatch, _ b: LogBatch, _ body: String) {
        #expect(a.runID == b.runID, "\(body)")
        #expect(a.runUUID == b.runUUID, "\(body)")
        #expect(a.params == b.params, "\(body)")
        #expect(a.tags == b.tags, "\(body)")
        #expect(a.metrics.count == b.metrics.count, "\(body)")
        for (x, y) in zip(a.metrics, b.metrics) {
            #expect(x.key == y.key && x.timestamp == y.timestamp && x.step == y.step, "\(body)")
            #expect(x.value.bitPattern == y.value.bitPattern, "\(body)")
            #expect(x.modelID == nil && x.datasetName == nil && x.datasetDigest == nil)
        }
    }

    @Test("Bodies in the usual shape decode to exactly what the general path decodes")
    func usualShapes() throws {
        var rng = SystemRandomNumberGenerator()
        // Short and long forms, the edges of the range, one longer than the stack copy the fast
        // path parses (64 bytes), and doubles printed with all their digits, as Python does.
        let values = ["0", "-0", "1", "-1", "0.5", "-0.25", "1e-300", "2.5E+10", "1.7976931348623157e308",
                      "4.9e-324", "0.1", "123456789012345678901234567890", "3.141592653589793", "-7e-3",
                      "1e-400", "2.2250738585072011e-308", "0.1000000000000000055511151231257827021181583404541015625",
                      "1" + String(repeating: "0", count: 70), "-0.000000000000000000000000000000000000000000000000000000000000001e+2"]
            + (0..<40).map { _ in "\(Double.random(in: -1...1, using: &rng) * pow(10, Double(Int.random(in: -20...20, using: &rng))))" }
        let integers = ["0", "1", "-1", "1763900000000", "9223372036854775807", "-9223372036854775807"]
        for round in 0..<300 {
            let space = [" ", "", "\n  ", "\t"][round % 4]
            var metrics: [String] = []
            // Keys in turns, in runs or at random; one key, a few, or more than the decoder
            // keeps at hand (16).
            let keyCount = [4, 1, 23][round / 100]
            for i in 0..<Int.random(in: 0...60, using: &rng) {
                let keyIndex = [i % keyCount, i / 5 % keyCount, Int.random(in: 0..<keyCount, using: &rng)][round % 3]
                var fields = [
                    "\"key\":\(space)\"m\(keyIndex)/sub_\(round % 3)\"",
                    "\"value\":\(space)\(values.randomElement(using: &rng)!)",
                    "\"timestamp\":\(space)\(integers.randomElement(using: &rng)!)",
                ]
                if Bool.random(using: &rng) { fields.append("\"step\":\(integers.randomElement(using: &rng)!)") }
                fields.shuffle(using: &rng)
                metrics.append("{\(space)" + fields.joined(separator: ",\(space)") + "}")
            }
            var members = ["\"metrics\":\(space)[" + metrics.joined(separator: ",\(space)") + "]"]
            if round % 2 == 0 { members.append("\"run_id\":\"0123456789abcdef0123456789abcdef\"") }
            if round % 3 == 0 { members.append("\"run_uuid\":\"\"") }
            if round % 5 == 0 { members.append("\"params\":[{\"key\":\"lr\",\"value\":\"0.01\"},{\"value\":\"x y\",\"key\":\"opt\"}]") }
            if round % 7 == 0 { members.append("\"tags\":[]") }
            members.shuffle(using: &rng)
            let body = "\(space){" + members.joined(separator: ",") + "}\(space)"
            let decoded = try #require(fast(body), "the fast path should take \(body)")
            expectSame(decoded, try general(body), body)
        }
    }

    @Test("Anything unusual is left to the general path", arguments: [
        #"{"run_id":"r","metrics":[{"key":"a\"b","value":1,"timestamp":1}]}"#,      // escape in a string
        #"{"run_id":"r","metrics":[{"key":"é","value":1,"timestamp":1}]}"#,         // non-ASCII
        #"{"run_id":"r","metrics":[{"key":"a","value":"NaN","timestamp":1}]}"#,     // number as a string
        #"{"run_id":"r","metrics":[{"key":"a","value":1,"timestamp":"1"}]}"#,
        #"{"run_id":"r","metrics":[{"key":"a","value":null,"timestamp":1}]}"#,
        #"{"run_id":"r","metrics":[{"key":"a","value":1,"value":2,"timestamp":1}]}"#, // repeated field
        #"{"run_id":"r","run_id":"s","metrics":[]}"#,
        #"{"run_id":"r","metrics":[{"key":"a","value":1,"timestamp":1,"model_id":"m"}]}"#, // other field
        #"{"run_id":"r","metrics":[{"key":"a","value":1,"timestamp":1,"stap":1}]}"#, // as long as a known one
        #"{"run_id":"r","metrics":[{"kay":"a","value":1,"timestamp":1}]}"#,
        #"{"run_id":"r","tegs":[]}"#,
        #"{"run_id":"r","metrics":[],"metrics":[]}"#,
        #"{"run_id":"r","metrics":[{"key":"a","value":1,"timestamp":1,"key":"b"}]}"#,
        #"{"run_id":"r","metrics":[{"key":"a","value":1,"timestamp":1.5}]}"#,       // fractional int64
        #"{"run_id":"r","metrics":[{"key":"a","value":1,"timestamp":1e3}]}"#,
        #"{"run_id":"r","metrics":[{"key":"a","value":01,"timestamp":1}]}"#,        // not JSON
        #"{"run_id":"r","metrics":[{"key":"a","value":1e999,"timestamp":1}]}"#,     // overflows a double
        #"{"run_id":"r","metrics":[{"key":"a","value":1,"timestamp":9223372036854775808}]}"#,
        #"{"run_id":"r","metrics":[{"key":"a","value":1}]}"#,                       // missing timestamp
        #"{"run_id":"r","metrics":[{"key":"a","value":1,"timestamp":1},]}"#,        // trailing comma
        #"{"run_id":"r","metrics":[{"key":"a","value":1,"timestamp":1}]} x"#,       // trailing bytes
        #"{"run_id":"r","metrics":[{"key":"a","value":1,"timestamp":1}]"#,          // truncated
        #"{"run_id":"r","metrics":{}}"#,
        #"{"run_id":7,"metrics":[]}"#,
        #"{"run_id":"r","params":[{"key":"a","value":1}]}"#,
        #"{"run_id":"r","metrics":null}"#,
        #"[]"#,
        #""#,
    ])
    func unusualBodies(body: String) {
        #expect(fast(body) == nil)
    }

    @Test("The reply to a batch the fast path takes is the same as the general path's")
    func resolvesRunIDLikeTheGeneralPath() throws {
        let body = #"{"run_uuid":"abc","run_id":"","metrics":[]}"#
        let decoded = try #require(fast(body))
        #expect(try decoded.resolvedRunID() == "abc")
        #expect(try general(body).resolvedRunID() == "abc")
        #expect(throws: CairnError.self) { try fast(#"{"metrics":[]}"#)!.resolvedRunID() }
    }
}
