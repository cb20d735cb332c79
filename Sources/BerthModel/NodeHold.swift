import Foundation

/// An operator's hold on one node: no new replicas (cordon), every replica moved off (drain), or a
/// standby to be promoted by the controller.
public struct NodeHold: Codable, Sendable, Hashable {
    public var node: String
    public var cordoned: Bool
    public var draining: Bool
    public var promote: Bool
    public var author: String
    public var reason: String
    public var since: Date

    public init(node: String, cordoned: Bool = false, draining: Bool = false, promote: Bool = false, author: String, reason: String = "", since: Date = Date()) {
        self.node = node
        self.cordoned = cordoned
        self.draining = draining
        self.promote = promote
        self.author = author
        self.reason = reason
        self.since = since
    }

    /// Nothing held: the row can go.
    public var isEmpty: Bool { !cordoned && !draining && !promote }
}
