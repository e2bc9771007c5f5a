import CairnCore

/// A normalised, relative artifact path such as `model/weights.bin`.
///
/// A valid path is `/`-separated and has:
/// - no empty, `.` or `..` components (so `a//b`, `./a` and `a/../b` are refused),
/// - no NUL byte, no backslash and no other control character (Unicode category Cc),
/// - no leading `/` and no Windows drive prefix such as `C:` (it is never absolute, on any OS),
/// - at most 255 UTF-8 bytes per component and 4096 UTF-8 bytes in all.
///
/// Any other Unicode is fine (`步骤/naïve.txt`). A single trailing `/` is accepted and dropped
/// (`a/b/` is `a/b`); everything else that is not already in normal form is refused rather than
/// silently rewritten, so that what is stored is exactly what the client named.
///
/// - Important: Callers must percent-decode the path **exactly once** before validating it.
///   Validation works on the decoded text: `%2e%2e` decoded once is `..` and is refused; a
///   double-encoded `%252e%252e` decoded once is the literal name `%2e%2e`, which is accepted as
///   an ordinary file name and can never escape, because it is not `..`. Decoding a validated
///   path a second time would defeat the check.
public struct ArtifactPath: Sendable, Hashable, CustomStringConvertible {
    /// Longest single component, in UTF-8 bytes (the usual file-name limit).
    public static let maxComponentBytes = 255
    /// Longest whole path, in UTF-8 bytes (the usual PATH_MAX).
    public static let maxPathBytes = 4096

    /// The path's components; empty for the root.
    public let components: [String]

    /// The components joined by `/`; `""` for the root.
    public var string: String { components.joined(separator: "/") }

    /// The root of a run's (or model's) artifact tree.
    public static let root = ArtifactPath(trustedComponents: [])

    /// Whether this is the root (no components).
    public var isRoot: Bool { components.isEmpty }

    /// The containing directory: the root for a single-component path, nil for the root itself.
    public var parent: ArtifactPath? {
        guard !components.isEmpty else { return nil }
        return ArtifactPath(trustedComponents: Array(components.dropLast()))
    }

    /// The last component, nil for the root.
    public var name: String? { components.last }

    public var description: String { string }

    /// Parses and validates an already percent-decoded path (see the type's documentation for
    /// the rules). A single trailing `/` is accepted and dropped. `allowRoot` permits `""`,
    /// meaning the root (for listing it); otherwise an empty path is refused.
    ///
    /// - Throws: `CairnError.invalidParameter` saying what was wrong with the path.
    public init(validating text: String, allowRoot: Bool = false) throws(CairnError) {
        func invalid(_ reason: String) -> CairnError {
            .invalidParameter("Invalid path '\(ArtifactPath.displayed(text))': \(reason)")
        }

        if text.isEmpty {
            guard allowRoot else { throw invalid("the path is empty.") }
            self.init(trustedComponents: [])
            return
        }
        for scalar in text.unicodeScalars {
            if scalar == "\0" { throw invalid("NUL bytes are not allowed in artifact paths.") }
            if scalar == "\\" { throw invalid("backslashes are not allowed in artifact paths; use '/' to separate directories.") }
            if scalar.properties.generalCategory == .control {
                throw invalid("control characters are not allowed in artifact paths.")
            }
        }
        if text.hasPrefix("/") { throw invalid("artifact paths must be relative, not start with '/'.") }
        if ArtifactPath.hasDrivePrefix(text) {
            throw invalid("artifact paths must be relative, not start with a drive letter.")
        }

        var body = Substring(text)
        if body.hasSuffix("/") { body = body.dropLast() }
        if body.utf8.count > ArtifactPath.maxPathBytes {
            throw invalid("the path is longer than \(ArtifactPath.maxPathBytes) bytes.")
        }

        var parts: [String] = []
        for part in body.split(separator: "/", omittingEmptySubsequences: false) {
            switch part {
            case "":
                throw invalid("empty path components ('//' or a trailing '//') are not allowed in artifact paths.")
            case ".":
                throw invalid("'.' is not allowed in artifact paths.")
            case "..":
                throw invalid("'..' is not allowed in artifact paths.")
            default:
                if part.utf8.count > ArtifactPath.maxComponentBytes {
                    throw invalid("the component '\(ArtifactPath.displayed(String(part)))' is longer than \(ArtifactPath.maxComponentBytes) bytes.")
                }
                parts.append(String(part))
            }
        }
        self.init(trustedComponents: parts)
    }

    /// Components already known to be valid.
    init(trustedComponents: [String]) {
        self.components = trustedComponents
    }

    /// This path followed by `other` (`a/b` + `c/d` is `a/b/c/d`). Every component stays valid;
    /// only the overall length limit is not re-checked, so validate again if that matters.
    public func appending(_ other: ArtifactPath) -> ArtifactPath {
        ArtifactPath(trustedComponents: components + other.components)
    }

    /// Whether `other`'s components are a leading run of this path's components, compared
    /// component by component: `a/bc` does not have the prefix `a/b`. Every path has the root as prefix.
    public func hasPrefix(_ other: ArtifactPath) -> Bool {
        other.components.count <= components.count
            && zip(components, other.components).allSatisfy { $0 == $1 }
    }

    /// `C:`, `c:foo` and the like: a Windows drive prefix, refused so a path means the same on every client.
    private static func hasDrivePrefix(_ text: String) -> Bool {
        let scalars = Array(text.unicodeScalars.prefix(2))
        guard scalars.count == 2, scalars[1] == ":" else { return false }
        return scalars[0].isASCII && scalars[0].properties.isAlphabetic
    }

    /// The path as it may appear in an error message: control characters escaped, and cut short
    /// if very long, so a hostile path can't forge log lines or flood them.
    static func displayed(_ text: String) -> String {
        var out = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == 200 {
                out += "…"
                break
            }
            if scalar.properties.generalCategory == .control {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
            count += 1
        }
        return out
    }
}
