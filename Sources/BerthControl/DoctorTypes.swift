import Foundation

/// One thing `berth doctor` looked at.
public struct Finding: Codable, Sendable, Hashable {
    public enum Level: String, Codable, Sendable, Comparable {
        case ok, warning, failure
        public static func < (a: Level, b: Level) -> Bool { a.rank < b.rank }
        var rank: Int { switch self { case .ok: 0; case .warning: 1; case .failure: 2 } }
    }

    public var level: Level
    /// `node/NAME`, `deployment/NAME`, `replica/DEPLOYMENT/N`, `gateway/NAME` or `state`.
    public var target: String
    public var check: String
    public var detail: String
    /// What to do about it; empty when fine.
    public var advice: String
}

/// What `berth doctor` checks, and against which limits.
public struct DoctorOptions: Sendable {
    /// Only these targets (`node/NAME`, `deployment/NAME`); all when empty.
    public var focus: String?
    /// Images larger than this slow down a cold-standby promotion.
    public var imageBudgetBytes: Int64 = 15_000_000_000
    public var snapshotMaxAge: TimeInterval = 7200
    public var minimumFreeDiskBytes: Int64 = 1 << 30

    public init() {}
}
