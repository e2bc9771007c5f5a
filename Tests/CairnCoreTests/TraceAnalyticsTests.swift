import CairnCore
import Testing

@Suite("Trace analytics metadata")
struct TraceAnalyticsTests {
    @Test("Floats are written as Python's repr writes them")
    func pythonRepr() {
        let cases: [(Double, String)] = [
            (0, "0.0"), (-0.0, "-0.0"), (1, "1.0"), (0.5, "0.5"), (-2.5, "-2.5"), (0.1, "0.1"), (0.0001, "0.0001"),
            (0.00001, "1e-05"), (1.5e-7, "1.5e-07"), (123.456, "123.456"), (1e15, "1000000000000000.0"),
            (1e16, "1e+16"), (1.25e16, "1.25e+16"), (9007199254740992, "9007199254740992.0"), (1e300, "1e+300"),
            (.leastNonzeroMagnitude, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
        ]
        for (value, text) in cases {
            #expect(TraceAnalytics.pythonRepr(value) == text, "\(value)")
        }
    }

    @Test("Token usage and cost are kept as MLflow answers them: known keys in its order, integers and floats")
    func stored() {
        #expect(TraceAnalytics.stored(TraceKey.tokenUsage, #"{"total_tokens": 15, "input_tokens": 10, "output_tokens": 5, "extra": 1}"#)
            == #"{"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}"#)
        #expect(TraceAnalytics.stored(TraceKey.tokenUsage, #"{"input_tokens": 10.0, "output_tokens": "7", "total_tokens": 1.5}"#)
            == #"{"input_tokens": 10, "output_tokens": 7}"#)
        #expect(TraceAnalytics.stored(TraceKey.tokenUsage, #"{"input_tokens": true}"#) == nil)
        #expect(TraceAnalytics.stored(TraceKey.tokenUsage, #"{"input_tokens": 99999999999999999999}"#) == nil)
        #expect(TraceAnalytics.stored(TraceKey.cost, #"{"total_cost": 1, "input_cost": "0.5", "output_cost": "NaN"}"#)
            == #"{"input_cost": 0.5, "total_cost": 1.0}"#)
        #expect(TraceAnalytics.stored(TraceKey.cost, "nonsense") == nil)
        #expect(TraceAnalytics.stored(TraceKey.cost, "[1]") == nil)
    }

    @Test("A filter value matches only when written exactly as MLflow writes it, with known keys only")
    func filterValue() {
        let canonical = #"{"input_tokens": 10, "output_tokens": 5}"#
        #expect(TraceAnalytics.filterValue(TraceKey.tokenUsage, canonical) == canonical)
        #expect(TraceAnalytics.filterValue(TraceKey.tokenUsage, #"{"input_tokens":10,"output_tokens":5}"#) == nil)
        #expect(TraceAnalytics.filterValue(TraceKey.tokenUsage, #"{"output_tokens": 5, "input_tokens": 10}"#) == nil)
        #expect(TraceAnalytics.filterValue(TraceKey.tokenUsage, #"{"input_tokens": 10, "extra": 1}"#) == nil)
        #expect(TraceAnalytics.filterValue(TraceKey.cost, #"{"total_cost": 1.0}"#) == #"{"total_cost": 1.0}"#)
        #expect(TraceAnalytics.filterValue(TraceKey.cost, #"{"total_cost": 1}"#) == nil)
    }

    @Test("The session comes from the first span with session.id or gen_ai.conversation.id")
    func session() {
        func span(_ attributes: [OTLPKeyValue]) -> JSONValue {
            var span = OTLPSpan()
            span.attributes = attributes
            return span.json
        }
        #expect(TraceAnalytics.session([span([]), span([OTLPKeyValue(key: "gen_ai.conversation.id", value: .string("c-1"))]),
                                        span([OTLPKeyValue(key: "session.id", value: .string("s-1"))])]) == "c-1")
        #expect(TraceAnalytics.session([span([OTLPKeyValue(key: "session.id", value: .int(42))])]) == "42")
        #expect(TraceAnalytics.session([span([OTLPKeyValue(key: "user.id", value: .string("u"))])]) == nil)
    }
}
