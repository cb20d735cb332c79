import BerthModel
import Foundation

/// One revision of the desired state: who stored it, when, why, and how much it changed.
public struct Revision: Codable, Sendable, Hashable {
    public enum Origin: String, Codable, Sendable {
        case apply, rollback, restore
    }

    public var id: Int64?
    public var createdAt: Date
    public var author: String
    public var message: String
    public var origin: Origin
    public var createdCount: Int
    public var configuredCount: Int
    public var deletedCount: Int
}

/// What one apply did (or would do) to one object.
public enum ChangeAction: String, Codable, Sendable {
    case created, configured, unchanged, deleted
}

/// An object's change in a revision.
public struct ObjectChange: Sendable, Hashable {
    public var key: ObjectKey
    public var action: ChangeAction

    public init(key: ObjectKey, action: ChangeAction) {
        self.key = key
        self.action = action
    }
}

/// A revision with the objects it changed.
public struct RevisionSummary: Sendable, Hashable {
    public var revision: Revision
    public var changes: [ObjectChange]

    public var number: Int64 { revision.id ?? 0 }
}

/// A stored object with the revisions that created and last changed it.
public struct StoredObject: Sendable, Hashable {
    public var resource: Resource
    public var revision: Int64
    public var createdRevision: Int64
    /// Canonical JSON as stored.
    public var document: String
}

/// One entry of the event log.
public struct Event: Codable, Sendable, Hashable {
    public var id: Int64?
    public var time: Date
    public var revision: Int64?
    public var kind: String?
    public var name: String?
    /// `Normal` or `Warning`.
    public var type: String
    /// CamelCase reason, e.g. `Applied`.
    public var reason: String
    public var message: String

    public init(time: Date, revision: Int64?, kind: String?, name: String?, type: String = "Normal", reason: String, message: String) {
        self.time = time
        self.revision = revision
        self.kind = kind
        self.name = name
        self.type = type
        self.reason = reason
        self.message = message
    }
}
