import Hummingbird

/// The request context of Cairn's routes.
public struct CairnRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: Source) {
        coreContext = .init(source: source)
    }
}
