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
}
