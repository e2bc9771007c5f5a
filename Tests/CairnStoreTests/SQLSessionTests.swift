import Foundation
import Testing

@testable import CairnStore

@Suite("SQL session helpers")
struct SQLSessionTests {
    @Test("A text list is the JSON array of its strings, whatever characters they hold")
    func textListIsJSON() throws {
        let strings = ["plain", "quote \" and backslash \\", "line\nbreak\ttab\u{01}", "ünïcödé 🚀", "", "a/b:c.d e"]
        let decoded = try JSONSerialization.jsonObject(with: Data(textList(strings).utf8)) as? [String]
        #expect(decoded == strings)
        #expect(textList([]) == "[]")
    }
}
