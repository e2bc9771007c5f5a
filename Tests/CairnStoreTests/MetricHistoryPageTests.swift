import CairnCore
import CairnTestSupport
import Foundation
import Testing
@testable import CairnStore

@Suite("Metric history pages")
struct MetricHistoryPageTests {
    /// Every page of the series, following the pages as the service does: the first page
    /// without `ordered`, each next one with the size the page before found in order.
    private static func pages(_ store: SQLStore, _ runID: String, size: Int) async throws -> (points: [MetricPoint], seeks: Int) {
        var points: [MetricPoint] = []
        var ordered: Int?
        var seeks = 0
        while true {
            let page = try await store.metricHistoryPage(runID: runID, key: "loss", offset: points.count, limit: size, ordered: ordered)
            if ordered != nil, ordered == page.total { seeks += 1 }
            points += page.points
            #expect(page.points.count == min(size, page.total - (points.count - page.points.count)))
            guard points.count < page.total, !page.points.isEmpty else { return (points, seeks) }
            ordered = page.inOrder ? page.total : nil
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
                let (paged, seeks) = try await Self.pages(store, runID, size: size)
                #expect(paged == whole, "pages of \(size)")
                #expect(seeks == max(0, (points.count + size - 1) / size - 1), "every page after the first seeks, pages of \(size)")
            }
            // Any single page, at any offset, is that slice of the history.
            for (offset, limit) in [(0, 5), (1, 1), (699, 2), (5_000, 3_333), (11_990, 50), (12_000, 10), (40_000, 10)] {
                let page = try await store.metricHistoryPage(runID: runID, key: "loss", offset: offset, limit: limit, ordered: points.count)
                #expect(page.points == Array(whole[min(offset, whole.count)..<min(offset + limit, whole.count)]), "\(offset)+\(limit)")
                #expect(page.total == points.count && (page.points.isEmpty || page.inOrder))
            }
            // A token from before the series grew: the page is read whole, from the grown series.
            let more = [MetricPoint(step: 20_000, timestamp: 1_800_000_000_000, value: 1)]
            try await Self.log(store, runID, more)
            let grown = try await store.metricHistoryPage(runID: runID, key: "loss", offset: 11_999, limit: 10, ordered: points.count)
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
            let first = try await store.metricHistoryPage(runID: runID, key: "loss", offset: 0, limit: 700, ordered: nil)
            #expect(!first.inOrder && first.points == Array(whole.prefix(700)))
            let (paged, seeks) = try await Self.pages(store, runID, size: 700)
            #expect(paged == whole && seeks == 0)
        }
    }
}
