import CairnCore
import Testing

@Suite("Trace filter correlation")
struct TraceCorrelationTests {
    @Test("NPMI matches MLflow's for co-occurring, never co-occurring, independent and empty filters")
    func npmi() {
        let both = TraceCorrelation.npmi(joint: 2, filter1: 4, filter2: 2, total: 5)
        #expect(abs(both.npmi - 0.24352920263396993) < 1e-12 && abs(both.smoothed - 0.14971617401047535) < 1e-12)
        let never = TraceCorrelation.npmi(joint: 0, filter1: 1, filter2: 4, total: 5)
        #expect(never.npmi == -1 && abs(never.smoothed - -0.39780193962354293) < 1e-12)
        let independent = TraceCorrelation.npmi(joint: 2, filter1: 2, filter2: 4, total: 4)
        #expect(abs(independent.npmi) < 1e-12 && abs(independent.smoothed) < 1e-12)
        let always = TraceCorrelation.npmi(joint: 3, filter1: 3, filter2: 3, total: 3)
        #expect(always.npmi == 1 && always.smoothed == 1)
        #expect(TraceCorrelation.npmi(joint: 0, filter1: 0, filter2: 2, total: 5).npmi.isNaN)
        #expect(TraceCorrelation.npmi(joint: 0, filter1: 0, filter2: 0, total: 0).smoothed.isNaN)
    }
}
