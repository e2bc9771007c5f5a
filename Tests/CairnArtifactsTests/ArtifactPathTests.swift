import CairnCore
import Foundation
import Testing

@testable import CairnArtifacts

@Suite("Artifact paths")
struct ArtifactPathTests {
    @Test("Ordinary relative paths are accepted as they are", arguments: [
        "model.pkl", "a/b/c.txt", "步骤/naïve résumé.txt", "...", ".hidden/x", "a b/c d", "ab:c/d", "x/C:y",
        "-rf", "emoji/🪨.bin", "%2e%2e", "a/%2e%2e/b",
    ])
    func acceptsOrdinaryPaths(text: String) throws {
        let path = try ArtifactPath(validating: text)
        #expect(path.string == text)
        #expect(path.description == text)
        #expect(path.components == text.split(separator: "/").map(String.init))
    }

    @Test("Path attacks and malformed paths are refused", arguments: [
        "..", "../x", "x/..", "a/../b", "a/b/../../..", "/etc/passwd", "/", "//x",
        "C:\\x", "C:/x", "c:", "a:b/c", "a\\b", "..\\..\\x", "a\u{0}b", "\u{0}",
        ".", "./a", "a/./b", "a/.", "a//b", "//", "a//", "a/b//",
        "a\nb", "a\rb", "a\tb", "a\u{1b}[31m", "a\u{7f}", "a\u{85}b", "",
    ])
    func refusesAttacks(text: String) {
        #expect(throws: CairnError.self) { try ArtifactPath(validating: text) }
    }

    @Test("A percent-encoded '..' is refused once decoded, and a double-encoded one is a plain name")
    func percentEncoding() throws {
        let decodedOnce = try #require("%2e%2e".removingPercentEncoding)
        #expect(decodedOnce == "..")
        #expect(throws: CairnError.self) { try ArtifactPath(validating: decodedOnce) }
        #expect(throws: CairnError.self) { try ArtifactPath(validating: try #require("a/%2E%2E/b".removingPercentEncoding)) }

        let doubleDecodedOnce = try #require("%252e%252e/x".removingPercentEncoding)
        #expect(doubleDecodedOnce == "%2e%2e/x")
        let path = try ArtifactPath(validating: doubleDecodedOnce)
        #expect(path.components == ["%2e%2e", "x"])
        #expect(!path.components.contains(".."))
    }

    @Test("Errors say which path was wrong and why")
    func errorMessages() throws {
        let dotDot = #expect(throws: CairnError.self) { try ArtifactPath(validating: "a/../b") }
        #expect(dotDot?.code == .invalidParameterValue)
        #expect(dotDot?.message == "Invalid path 'a/../b': '..' is not allowed in artifact paths.")

        let absolute = #expect(throws: CairnError.self) { try ArtifactPath(validating: "/etc/passwd") }
        #expect(absolute?.message == "Invalid path '/etc/passwd': artifact paths must be relative, not start with '/'.")

        let empty = #expect(throws: CairnError.self) { try ArtifactPath(validating: "a//b") }
        #expect(empty?.message.contains("empty path components") == true)

        let backslash = #expect(throws: CairnError.self) { try ArtifactPath(validating: "C:\\x") }
        #expect(backslash?.message.contains("backslashes are not allowed") == true)
    }

    @Test("Control characters are escaped in error messages, not echoed")
    func controlCharactersEscaped() throws {
        let nul = #expect(throws: CairnError.self) { try ArtifactPath(validating: "a\u{0}b") }
        let message = try #require(nul?.message)
        #expect(message == "Invalid path 'a\\u{0}b': NUL bytes are not allowed in artifact paths.")

        let newline = #expect(throws: CairnError.self) { try ArtifactPath(validating: "x\nFAKE LOG LINE") }
        #expect(newline?.message.contains("\n") == false)
        #expect(newline?.message.contains("control characters") == true)
    }

    @Test("Components may be 255 bytes and paths 4096 bytes, but no longer")
    func lengthLimits() throws {
        let longest = String(repeating: "a", count: 255)
        #expect(try ArtifactPath(validating: longest).components == [longest])
        #expect(throws: CairnError.self) { try ArtifactPath(validating: longest + "a") }
        // The limit is in UTF-8 bytes: 128 two-byte characters are 256 bytes.
        #expect(throws: CairnError.self) { try ArtifactPath(validating: String(repeating: "é", count: 128)) }
        #expect(try ArtifactPath(validating: String(repeating: "é", count: 127)).components.count == 1)

        // 15 × 255 + 14 slashes, then "/" + 254 bytes + "/d": 4096 bytes exactly.
        let component = String(repeating: "b", count: 255)
        let exact = Array(repeating: component, count: 15).joined(separator: "/") + "/" + String(repeating: "c", count: 254) + "/d"
        #expect(exact.utf8.count == 4096)
        #expect(try ArtifactPath(validating: exact).string == exact)
        #expect(try ArtifactPath(validating: exact + "/").string == exact)
        #expect(throws: CairnError.self) { try ArtifactPath(validating: exact + "d") }

        let huge = #expect(throws: CairnError.self) { try ArtifactPath(validating: String(repeating: "x/", count: 5000)) }
        #expect(huge?.message.contains("longer than 4096 bytes") == true)
        #expect((huge?.message.count ?? .max) < 400)
    }

    @Test("One trailing slash is dropped")
    func trailingSlash() throws {
        let path = try ArtifactPath(validating: "a/b/")
        #expect(path.components == ["a", "b"])
        #expect(path.string == "a/b")
        #expect(path == (try ArtifactPath(validating: "a/b")))
    }

    @Test("The empty path is the root only when allowed")
    func root() throws {
        #expect(throws: CairnError.self) { try ArtifactPath(validating: "") }
        let root = try ArtifactPath(validating: "", allowRoot: true)
        #expect(root == .root)
        #expect(root.isRoot)
        #expect(root.string == "")
        #expect(root.components.isEmpty)
        #expect(root.parent == nil)
        #expect(root.name == nil)
        #expect(throws: CairnError.self) { try ArtifactPath(validating: "/", allowRoot: true) }
    }

    @Test("Parent and name walk up the tree")
    func parentAndName() throws {
        let path = try ArtifactPath(validating: "a/b/c.txt")
        #expect(path.name == "c.txt")
        #expect(path.parent == (try ArtifactPath(validating: "a/b")))
        #expect(path.parent?.parent?.name == "a")
        #expect(path.parent?.parent?.parent == .root)
        #expect(path.parent?.parent?.parent?.parent == nil)
    }

    @Test("Appending joins components")
    func appending() throws {
        let base = try ArtifactPath(validating: "run/outputs")
        let joined = base.appending(try ArtifactPath(validating: "model/weights.bin"))
        #expect(joined.string == "run/outputs/model/weights.bin")
        #expect(base.appending(.root) == base)
        #expect(ArtifactPath.root.appending(base) == base)
    }

    @Test("Prefixes are compared component by component")
    func prefixes() throws {
        let path = try ArtifactPath(validating: "a/bc/d")
        #expect(path.hasPrefix(.root))
        #expect(path.hasPrefix(try ArtifactPath(validating: "a")))
        #expect(path.hasPrefix(try ArtifactPath(validating: "a/bc")))
        #expect(path.hasPrefix(path))
        #expect(!path.hasPrefix(try ArtifactPath(validating: "a/b")))
        #expect(!path.hasPrefix(try ArtifactPath(validating: "a/bc/d/e")))
        #expect(!path.hasPrefix(try ArtifactPath(validating: "bc")))
        #expect(ArtifactPath.root.hasPrefix(.root))
        #expect(!ArtifactPath.root.hasPrefix(path))
    }
}
