import CairnStore
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Progress of a long pass over the whole store (`cairn verify`, `gc`, `retention plan`) on
/// stderr, never on stdout, so `--json` stays one document and the report stays the report.
/// On a terminal: one line rewritten in place, at most ten times a second, erased when done.
/// With `--progress` (for logs): one plain line a second, on a terminal or not. Otherwise
/// nothing.
final class StoreProgress: Sendable {
    private let inPlace: Bool
    private let enabled: Bool
    private let interval: TimeInterval
    private let state = Mutex<(last: Date, shown: Bool)>((.distantPast, false))
    private let prefix: String

    /// `prefix` starts every line (the command's name).
    init(forced: Bool, prefix: String) {
        self.prefix = prefix
        let terminal = isatty(STDERR_FILENO) == 1
        enabled = forced || terminal
        inPlace = terminal && !forced
        interval = inPlace ? 0.1 : 1
    }

    /// The callback the store's passes call.
    var report: ProgressReport? {
        guard enabled else { return nil }
        return { [self] line in show(line) }
    }

    func show(_ line: String, force: Bool = false) {
        let now = Date()
        let due = state.withLock { s -> Bool in
            guard force || now.timeIntervalSince(s.last) >= interval else { return false }
            s.last = now
            s.shown = true
            return true
        }
        guard due else { return }
        write(inPlace ? "\r\u{1B}[K\(prefix): \(line)" : "\(prefix): \(line)\n")
    }

    /// Erases the in-place line before the report is printed.
    func finish() {
        let shown = state.withLock { s -> Bool in defer { s.shown = false }; return s.shown }
        if inPlace && shown { write("\r\u{1B}[K") }
    }

    private func write(_ text: String) {
        try? FileHandle.standardError.write(contentsOf: Data(text.utf8))
    }
}
