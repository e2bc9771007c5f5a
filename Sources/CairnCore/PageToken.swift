import Foundation

/// The opaque page token of searches: base64 of `{"offset": N}`, as MLflow writes it.
/// A token that does not decode is the caller's error (`INVALID_PARAMETER_VALUE`).
public struct PageToken: Sendable, Equatable {
    public var offset: Int
    /// A metric history's pages only: the series held this many points, already in history
    /// order, when the page before was read (`{"offset": N, "ordered": C}`), so a page of the
    /// same series can read just the segments it needs (see `SQLStore.metricHistoryPage`).
    public var ordered: Int?
    /// A metric history's pages only, with `ordered`: where the page's first point lies among
    /// the series' segments (`"seq"`, `"at"`, `"rows"`).
    public var mark: SegmentMark?

    public init(offset: Int, ordered: Int? = nil, mark: SegmentMark? = nil) {
        self.offset = offset
        self.ordered = ordered
        self.mark = ordered == nil ? nil : mark
    }

    public var encoded: String {
        var json = "{\"offset\": \(offset)"
        if let ordered { json += ", \"ordered\": \(ordered)" }
        if let mark { json += ", \"seq\": \(mark.seq), \"at\": \(mark.at), \"rows\": \(mark.rows)" }
        return Data((json + "}").utf8).base64EncodedString()
    }

    /// nil or empty token → offset 0.
    public static func decode(_ token: String?) throws(CairnError) -> PageToken {
        guard let token, !token.isEmpty else { return PageToken(offset: 0) }
        guard let data = Data(base64Encoded: token),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let offset = (object["offset"] as? NSNumber)?.intValue, offset >= 0
        else {
            throw .invalidParameter("Invalid page token '\(token)': it could not be decoded. Pass the next_page_token of a previous response unchanged, or omit it to start from the first page.")
        }
        func number(_ name: String) -> NSNumber? { object[name] as? NSNumber }
        var mark: SegmentMark?
        if let seq = number("seq")?.int64Value, let at = number("at")?.intValue, let rows = number("rows")?.intValue {
            mark = SegmentMark(seq: seq, at: at, rows: rows)
        }
        return PageToken(offset: offset, ordered: number("ordered")?.intValue, mark: mark)
    }

    /// The token for the page after `offset + pageSize`, if more rows exist.
    public static func next(after offset: Int, pageSize: Int, hasMore: Bool) -> String? {
        hasMore ? PageToken(offset: offset + pageSize).encoded : nil
    }
}

/// Where a page of a metric history begins among the series' segments, handed from one page
/// to the next in its token: the page's first point lies in the first segment numbered `seq`
/// or higher, which begins at point `at` of the series; the page before read `rows` segments.
/// It only holds while the series is unchanged (`PageToken.ordered`), and the store uses it
/// only then.
public struct SegmentMark: Sendable, Equatable {
    public var seq: Int64
    public var at: Int
    public var rows: Int

    public init(seq: Int64, at: Int, rows: Int) {
        self.seq = seq
        self.at = at
        self.rows = rows
    }

    /// The mark of the page that begins at point `pageEnd`, read from the segment `seq`, which
    /// holds points `segment` and is the one where the page before ended, after `rows` segments:
    /// the next segment when the page ended with this one, this one otherwise.
    public init(pageEnd: Int, segment: Range<Int>, seq: Int64, rows: Int) {
        let ends = segment.upperBound == pageEnd
        self.init(seq: ends ? seq + 1 : seq, at: ends ? pageEnd : segment.lowerBound, rows: rows)
    }
}
