import Foundation

/// Something the controller tells about an object, before it becomes an `Event` of a revision.
public struct Notice: Sendable {
    public var kind: String
    public var name: String
    public var warning: Bool
    public var reason: Reason
    public var message: String
    /// Names in `message` that could be personal: the event keeps them, the log shows pseudonyms.
    public var personal: [String] = []

    public init(kind: String, name: String, warning: Bool, reason: Reason, message: String, personal: [String] = []) {
        self.kind = kind
        self.name = name
        self.warning = warning
        self.reason = reason
        self.message = message
        self.personal = personal
    }
}
