import Testing
@testable import CairnCore

@Suite("Metric alert rules")
struct MetricAlertTests {
    @Test("Rules are read with or without metric=, with an optional starting step, and written back the same way")
    func parse() throws {
        let rules = try MetricAlert.parse(" metric=val_loss > 2.0 ;accuracy<0.5 after step 100; metric=val_loss>2")
        #expect(rules.map(\.text) == ["val_loss>2", "accuracy<0.5 after step 100"])
        #expect(rules[1].afterStep == 100)
        #expect(rules[0].fires(value: 2.5, step: 0) && !rules[0].fires(value: 2.0, step: 0) && !rules[0].fires(value: .nan, step: 0))
        #expect(!rules[1].fires(value: 0.1, step: 99) && rules[1].fires(value: 0.1, step: 100))
    }

    @Test("A rule that cannot be read is refused with the clause named", arguments: [
        "", "val_loss is high", "metric=accuracy<0.5 after step soon", "metric=accuracy<0.5 after step -1", "loss>abc", "loss>inf",
    ])
    func refused(text: String) {
        #expect(throws: CairnError.self) { _ = try MetricAlert.parse(text) }
    }

    @Test("The fired tag lists each rule once")
    func fired() {
        #expect(MetricAlert.fired(inTag: "val_loss>2; accuracy<0.5 after step 100") == ["val_loss>2", "accuracy<0.5 after step 100"])
        #expect(MetricAlert.fired(inTag: nil).isEmpty)
    }
}
