import CairnCore
import CairnTestSupport
import Foundation
import Testing
@testable import CairnStore

@Suite("Metric history pages")
struct MetricHistoryPageTests {
    /// Every page of the series, following the pages as the service does: the first page
    /// without `ordered`, each next one with the size and the mark the page before gave.
    private static func pages(_ store: SQLStore, _ runID: String, size: Int) async throws -> (points: [MetricPoint], marks: Int) {
        var points: [MetricPoint] = []
        var ordered: Int?
        var mark: SegmentMark?
        var marks = 0
        while true {
            let page = try await store.metricHistoryPage(runID: runID, key: "loss", offset: points.count, limit: size, ordered: ordered, mark: mark)
            points += page.points
            #expect(page.points.count == min(size, page.total - (points.count - page.points.count)))
            guard points.count < page.total, !page.points.isEmpty else { return (points, marks) }
            ordered = page.inOrder ? page.total : nil
            mark = page.inOrder ? page.next : nil
            if mark != nil { marks += 1 }
        }
    }

    private static func log(_ store: SQLStore, _ runID: String, _ points: [MetricPoint]) async throws {
        try await logInUnevenBatches(store, runID: runID, points, first: 2, wrap: 900, grow: 71)
    }

    @Test("Pages of a series in order read only their segments and give the whole history once, in order", arguments: StoreBackend.allCases)
    func orderedPages(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let runID = try await newSeriesRun(store, "f")
            var generator = SeededGenerator(seed: 41)
            let points = (0..<12_000).map { i in
                MetricPoint(step: Int64(i), timestamp: 1_700_000_000_000 + Int64(i) * 10,
                            value: i % 501 == 3 ? .nan : Double(generator.next() % 100_000) / 7)
            }
            try await Self.log(store, runID, points)
            let segments = try await store.read { db in try db.value(Int.self, "SELECT COUNT(*) FROM metric_segments") } ?? 0
            #expect(segments > 20)
            let whole = try await store.metricHistory(runID: runID, key: "loss")
            #expect(whole == points)
            for size in [1, 97, 2_500, 11_999, 12_000, 25_000] where size > 1 || backend == .sqlite {
                let (paged, marks) = try await Self.pages(store, runID, size: size)
                #expect(paged == whole, "pages of \(size)")
                #expect(marks == max(0, (points.count + size - 1) / size - 1), "every page but the last tells the next where it begins, pages of \(size)")
            }
            // Any single page, at any offset, is that slice of the history: from a mark at the
            // series' start (reading more segments each time until the page is full), from a
            // mark past the series' end or with a stale size (both read whole).
            for (offset, limit) in [(0, 5), (1, 1), (699, 2), (5_000, 3_333), (11_990, 50), (12_000, 10), (40_000, 10)] {
                let expected = Array(whole[min(offset, whole.count)..<min(offset + limit, whole.count)])
                for mark in [SegmentMark(seq: 0, at: 0, rows: 1), SegmentMark(seq: 1_000_000, at: 0, rows: 3)] {
                    let page = try await store.metricHistoryPage(runID: runID, key: "loss", offset: offset, limit: limit, ordered: points.count, mark: mark)
                    #expect(page.points == expected, "\(offset)+\(limit) from \(mark)")
                    #expect(page.total == points.count && (page.points.isEmpty || page.inOrder))
                }
                let stale = try await store.metricHistoryPage(runID: runID, key: "loss", offset: offset, limit: limit, ordered: points.count - 1,
                                                              mark: SegmentMark(seq: 5, at: 1, rows: 1))
                #expect(stale.points == expected, "\(offset)+\(limit) with a stale size")
            }
            // A page that seeks reads only its own segments: with the series' first segment
            // damaged, the third page still reads from its mark; read whole, it names the damage.
            let first = try await store.metricHistoryPage(runID: runID, key: "loss", offset: 0, limit: 2_500, ordered: nil, mark: nil)
            let second = try await store.metricHistoryPage(runID: runID, key: "loss", offset: 2_500, limit: 2_500, ordered: first.total, mark: first.next)
            let third = try await store.metricHistoryPage(runID: runID, key: "loss", offset: 5_000, limit: 2_500, ordered: second.total, mark: second.next)
            #expect(first.next != nil && second.next != nil && third.points == Array(whole[5_000..<7_500]))
            _ = try await store.writeUnaudited { db in
                try db.execute("UPDATE metric_segments SET points = ? WHERE seq = (SELECT MIN(seq) FROM metric_segments)", [SQLValue.blob([0xFF, 0, 0])])
            }
            let again = try await store.metricHistoryPage(runID: runID, key: "loss", offset: 5_000, limit: 2_500, ordered: second.total, mark: second.next)
            #expect(again.points == third.points && again.next == third.next)
            await #expect(throws: CairnError.self) {
                try await store.metricHistoryPage(runID: runID, key: "loss", offset: 5_000, limit: 2_500, ordered: nil, mark: nil)
            }
        }
    }

    @Test("A token from before the series grew reads the grown series whole", arguments: StoreBackend.allCases)
    func grownSeries(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let runID = try await newSeriesRun(store, "d")
            let points = (0..<3_000).map { MetricPoint(step: Int64($0), timestamp: 1_700_000_000_000 + Int64($0), value: Double($0 % 97)) }
            try await Self.log(store, runID, points)
            let first = try await store.metricHistoryPage(runID: runID, key: "loss", offset: 0, limit: 2_999, ordered: nil, mark: nil)
            #expect(first.inOrder && first.next != nil)
            let more = [MetricPoint(step: 20_000, timestamp: 1_800_000_000_000, value: 1)]
            try await Self.log(store, runID, more)
            let grown = try await store.metricHistoryPage(runID: runID, key: "loss", offset: 2_999, limit: 10, ordered: first.total, mark: first.next)
            #expect(grown.points == [points.last!] + more && grown.total == points.count + 1)
        }
    }

    @Test("A series written out of history order is paged from its sorted whole, never by seeking", arguments: StoreBackend.allCases)
    func unorderedPages(backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let runID = try await newSeriesRun(store, "e")
            var generator = SeededGenerator(seed: 43)
            // Timestamps out of order here and there, repeated steps.
            let points = (0..<5_000).map { i in
                MetricPoint(step: Int64(i / 3), timestamp: 1_700_000_000_000 + Int64(generator.next() % 4_000),
                            value: Double(generator.next() % 1_000))
            }
            try await Self.log(store, runID, points)
            let whole = try await store.metricHistory(runID: runID, key: "loss")
            #expect(whole.count == points.count && whole != points)
            let first = try await store.metricHistoryPage(runID: runID, key: "loss", offset: 0, limit: 700, ordered: nil, mark: nil)
            #expect(!first.inOrder && first.next == nil && first.points == Array(whole.prefix(700)))
            let (paged, marks) = try await Self.pages(store, runID, size: 700)
            #expect(paged == whole && marks == 0)
        }
    }
}
