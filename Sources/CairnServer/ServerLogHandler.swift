import Logging

/// The server's log handler: swift-log's `StreamLogHandler` lines on standard error, with the
/// handler's metadata formatted when a line is written rather than whenever it changes.
/// Hummingbird gives every request a logger with its own `hb.request.id`; `StreamLogHandler`
/// formats all metadata into text on every such change (about 2 % of a small request's CPU),
/// although at the default level no request writes a line.
public struct ServerLogHandler: LogHandler {
    private let label: String
    public var logLevel: Logger.Level = .info
    public var metadata = Logger.Metadata()
    public var metadataProvider: Logger.MetadataProvider?

    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = StreamLogHandler.standardError(label: label, metadataProvider: metadataProvider)
        line.logLevel = logLevel
        line.metadata = metadata
        line.log(event: event)
    }
}
