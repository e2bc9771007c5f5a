import Foundation

/// The opaque page token of searches: base64 of `{"offset": N}`, as MLflow writes it.
/// A token that does not decode is the caller's error (`INVALID_PARAMETER_VALUE`).
public struct PageToken: Sendable, Equatable {
    public var offset: Int
    /// A metric history's pages only: the series held this many points, already in history
    /// order, when the page before was read (`{"offset": N, "ordered": C}`), so a page of the
    /// same series can read just the segments it needs (see `SQLStore.metricHistoryPage`).
    public var ordered: Int?

    public init(offset: Int, ordered: Int? = nil) {
        self.offset = offset
        self.ordered = ordered
    }

    public var encoded: String {
        let json = ordered.map { "{\"offset\": \(offset), \"ordered\": \($0)}" } ?? "{\"offset\": \(offset)}"
        return Data(json.utf8).base64EncodedString()
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
        return PageToken(offset: offset, ordered: (object["ordered"] as? NSNumber)?.intValue)
    }

    /// The token for the page after `offset + pageSize`, if more rows exist.
    public static func next(after offset: Int, pageSize: Int, hasMore: Bool) -> String? {
        hasMore ? PageToken(offset: offset + pageSize).encoded : nil
    }
}
