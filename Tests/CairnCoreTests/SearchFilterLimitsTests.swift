import CairnTestSupport
import Foundation
import Testing
@testable import CairnCore

/// How many random inputs each fuzz test tries: a few thousand in the test command,
/// more with `CAIRN_FUZZ_ITERATIONS=1000000 swift test --filter Fuzz` (README, "Tests").
let fuzzIterations = Int(ProcessInfo.processInfo.environment["CAIRN_FUZZ_ITERATIONS"] ?? "") ?? 3000

/// Random filter text: pieces of the grammar glued together, some of them broken on purpose.
func randomFilterText(_ rng: inout SeededGenerator) -> String {
    let pieces = ["metrics.m", "params.p", "tags.t", "attributes.status", "run_name", "datasets.name", "`metrics`.`a b`",
                  "tags.\"x.y\"", " ", "  ", "AND", "OR", "NOT", "(", ")", "=", "!=", "<>", "<", "<=", ">", ">=", "LIKE",
                  "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL", "'a'", "\"b\"", "'%x_'", "0", "-1.5e3", "1e999",
                  "nan", "'", "\"", "`", ",", "('a', 'b')", "\u{0}", "é", "🙂", "\\", "..", "metrics.", "123abc", "--", ";"]
    var text = ""
    for _ in 0..<Int.random(in: 0...24, using: &rng) {
        text += pieces.randomElement(using: &rng)!
        if Bool.random(using: &rng) { text += " " }
    }
    return text
}

@Suite("Search filter limits and fuzzing")
struct SearchFilterLimitsTests {
    private func isLimitError(_ error: CairnError, mentioning limit: Int) -> Bool {
        error.code == .invalidParameterValue && error.message.contains(String(limit))
    }

    @Test("A filter of 1,000 clauses is refused with a 400 that names the clause limit")
    func tooManyClauses() throws {
        let text = Array(repeating: "metrics.m > 0", count: 1000).joined(separator: " AND ")
        #expect { try SearchFilterParser.parse(text, for: .runs) } throws: { error in
            isLimitError(error as! CairnError, mentioning: Limits.maxFilterClauses)
        }
        let atLimit = Array(repeating: "metrics.m > 0", count: Limits.maxFilterClauses).joined(separator: " OR ")
        #expect(try SearchFilterParser.parse(atLimit, for: .runs) != nil)
    }

    @Test("19 nested NOTs and 17 nested parentheses are refused; the nesting limit itself is accepted")
    func tooDeep() throws {
        let nots = String(repeating: "NOT ", count: 19) + "metrics.m > 0"
        #expect { try SearchFilterParser.parse(nots, for: .runs) } throws: { error in
            isLimitError(error as! CairnError, mentioning: Limits.maxFilterNesting)
        }
        let parens = String(repeating: "(", count: 17) + "metrics.m > 0" + String(repeating: ")", count: 17)
        #expect(throws: CairnError.self) { try SearchFilterParser.parse(parens, for: .runs) }
        let deepest = String(repeating: "NOT (", count: Limits.maxFilterNesting / 2) + "metrics.m > 0"
            + String(repeating: ")", count: Limits.maxFilterNesting / 2)
        #expect(try SearchFilterParser.parse(deepest, for: .runs) != nil)
    }

    @Test("Over-long filters, over-long IN lists and order_by lists of 2,000 entries are refused with their limits named")
    func otherLimits() throws {
        let long = "tags.t = '" + String(repeating: "x", count: Limits.maxFilterLength) + "'"
        #expect { try SearchFilterParser.parse(long, for: .runs) } throws: { error in
            isLimitError(error as! CairnError, mentioning: Limits.maxFilterLength)
        }
        let list = "run_id IN (" + (0...Limits.maxFilterListItems).map { "'\($0)'" }.joined(separator: ", ") + ")"
        #expect { try SearchFilterParser.parse(list, for: .runs) } throws: { error in
            isLimitError(error as! CairnError, mentioning: Limits.maxFilterListItems)
        }
        #expect { try OrderByParser.parse(Array(repeating: "start_time DESC", count: 2000), for: .runs) } throws: { error in
            isLimitError(error as! CairnError, mentioning: Limits.maxOrderByClauses)
        }
        #expect(try OrderByParser.parse(Array(repeating: "start_time DESC", count: Limits.maxOrderByClauses), for: .runs).count
            == Limits.maxOrderByClauses)
    }

    @Test("Fuzz: any filter text gives a filter or a 400, never a crash or another error, for every search target")
    func fuzzFilters() {
        var rng = SeededGenerator(seed: 0xCA1F_2026)
        let targets: [SearchTarget] = [.runs, .experiments, .loggedModels, .registeredModels, .modelVersions]
        for iteration in 0..<fuzzIterations {
            let text = randomFilterText(&rng)
            for target in targets {
                do {
                    _ = try SearchFilterParser.parse(text, for: target)
                } catch {
                    #expect(error.code == .invalidParameterValue, "iteration \(iteration): \(text.debugDescription) → \(error)")
                }
                do {
                    _ = try OrderByParser.parse(text, for: target)
                } catch {
                    #expect(error.code == .invalidParameterValue, "iteration \(iteration): order_by \(text.debugDescription) → \(error)")
                }
            }
        }
    }

    @Test("Fuzz: any bytes given to the JSON reader give a value or an error, never a crash")
    func fuzzJSON() {
        var rng = SeededGenerator(seed: 0x150_2026)
        let pieces = ["{", "}", "[", "]", ":", ",", "\"", "\"k\"", "1", "-0", "1e999", "-", ".5", "true", "nul", "null",
                      "\\u12", "\\ud800", "\\\"", " ", "\n", "\u{0}", "é", String(repeating: "[", count: 600)]
        for _ in 0..<fuzzIterations {
            var text = ""
            for _ in 0..<Int.random(in: 0...20, using: &rng) { text += pieces.randomElement(using: &rng)! }
            var bytes = Array(text.utf8)
            if !bytes.isEmpty, Bool.random(using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            _ = try? JSONValue.parse(bytes)
        }
    }
}
