import Foundation

/// Where artifact URIs point inside the server's artifact root: the parsing shared by the
/// artifact service, the registry and the store (which decides what `cairn gc` may forget).
public enum ArtifactLocation {
    /// `mlflow-artifacts:/1/abc/artifacts` → `1/abc/artifacts`; nil for other schemes.
    public static func proxyPath(fromArtifactURI uri: String) -> String? {
        guard uri.hasPrefix("mlflow-artifacts:") else { return nil }
        var rest = Substring(uri.dropFirst("mlflow-artifacts:".count))
        if rest.hasPrefix("//") {
            // mlflow-artifacts://host:port/path: skip the authority.
            rest = rest.dropFirst(2)
            guard let slash = rest.firstIndex(of: "/") else { return "" }
            rest = rest[slash...]
        }
        while rest.hasPrefix("/") { rest = rest.dropFirst() }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        return String(rest)
    }

    /// `runs:/<run>/<path>` → (run, path).
    public static func runSource(_ source: String) -> (runID: String, path: String)? {
        guard source.hasPrefix("runs:/") else { return nil }
        let rest = source.dropFirst("runs:/".count).drop(while: { $0 == "/" })
        let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let run = parts.first, !run.isEmpty else { return nil }
        return (String(run), parts.count > 1 ? String(parts[1]).trimmingCharacters(in: CharacterSet(charactersIn: "/")) : "")
    }

    /// `models:/m-<id>` (possibly with a trailing path) → `m-<id>`.
    public static func loggedModelID(inSource source: String) -> String? {
        guard source.hasPrefix("models:/m-") else { return nil }
        return String(source.dropFirst("models:/".count).split(separator: "/").first ?? "")
    }

    /// Whether the manifest path `path` is the file or folder `location`, or lies below it
    /// ("" is the whole root).
    public static func path(_ path: String, isAtOrUnder location: String) -> Bool {
        location.isEmpty || path == location || (path.hasPrefix(location) && path.dropFirst(location.count).hasPrefix("/"))
    }

    /// `s3://b/k` → `s3`; nil when the text does not start with `scheme:` (a one-letter
    /// "scheme" is a Windows drive, i.e. a local path).
    public static func scheme(of uri: String) -> String? {
        guard let colon = uri.firstIndex(of: ":") else { return nil }
        let candidate = uri[..<colon].unicodeScalars
        func isLetter(_ c: Unicode.Scalar) -> Bool { ("a"..."z").contains(c) || ("A"..."Z").contains(c) }
        guard candidate.count > 1, let first = candidate.first, isLetter(first),
              candidate.allSatisfy({ isLetter($0) || ("0"..."9").contains($0) || $0 == "+" || $0 == "." || $0 == "-" })
        else { return nil }
        return String(String.UnicodeScalarView(candidate)).lowercased()
    }

    /// An experiment's artifact location as MLflow's server stores it: a relative local path
    /// (`dir/sub`, `./dir`, `file:dir`) is made absolute against `directory`, the server's
    /// working directory (`/srv/dir/sub`, `file:///srv/dir`); anything else is kept as given.
    public static func resolvingRelativePath(_ location: String, against directory: String) -> String {
        func joined(_ relative: Substring) -> String {
            // As Python's pathlib joins: "." and empty segments go, ".." stays.
            let segments = relative.split(separator: "/").filter { $0 != "." }
            let base = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
            return ([base] + segments.map(String.init)).joined(separator: "/")
        }
        switch scheme(of: location) {
        case nil:
            return location.hasPrefix("/") ? location : joined(location[...])
        case "file":
            let path = location.dropFirst("file:".count)
            return path.hasPrefix("/") ? location : "file://" + joined(path)
        default:
            return location
        }
    }
}
