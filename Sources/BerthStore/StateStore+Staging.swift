import BerthModel
import Crypto
import Foundation

/// Where one staged model version's files stand on one node.
public struct Staging: Codable, Sendable, Hashable {
    public enum State: String, Codable, Sendable, CaseIterable {
        /// A stager runs (or ran and was cut off: the next one resumes).
        case staging
        /// Every file is in place under its own name, its sha256 checked while it was written.
        case staged
        /// The last attempt failed (see `detail`); retried with backoff.
        case failed
        /// Removed from the node (overwritten, then unlinked).
        case purged
    }

    public var node: String
    public var model: String
    public var version: String
    public var state: State
    public var fingerprint: String
    /// Bytes of the version's files on the node, complete or partial.
    public var bytesDone: Int64
    public var bytesTotal: Int64
    /// Bytes fetched over the network by the last attempt (resumed or present files count zero).
    public var bytesFetched: Int64
    public var attempts: Int
    public var startedAt: Date?
    public var updatedAt: Date
    public var detail: String

    public init(node: String, model: String, version: String, state: State, fingerprint: String, bytesDone: Int64 = 0, bytesTotal: Int64 = 0,
                bytesFetched: Int64 = 0, attempts: Int = 0, startedAt: Date? = nil, updatedAt: Date, detail: String = "") {
        self.node = node
        self.model = model
        self.version = version
        self.state = state
        self.fingerprint = fingerprint
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
        self.bytesFetched = bytesFetched
        self.attempts = attempts
        self.startedAt = startedAt
        self.updatedAt = updatedAt
        self.detail = detail
    }

    /// `model@version`.
    public var key: String { "\(model)@\(version)" }

    /// Identifies a version's artifact list: a row made for another list does not count.
    public static func fingerprint(_ version: ModelVersion) -> String {
        var hasher = SHA256()
        for a in version.artifacts.sorted(by: { $0.path < $1.path }) {
            hasher.update(data: Data("\(a.path)\u{0}\(a.sha256)\u{0}\(a.sizeBytes ?? -1)\n".utf8))
        }
        return hasher.finalize().prefix(12).map { String(format: "%02x", $0) }.joined()
    }

    /// Whether this row says `version`'s current files are staged.
    public func holds(_ version: ModelVersion) -> Bool { state == .staged && fingerprint == Self.fingerprint(version) }
}

extension StateStore {
    /// Every staging row, or those of one model.
    public func stagings(model: String? = nil) throws -> [Staging] {
        try read("reading staging records") { db in
            let rows = try model.map { try Staging.all(db, "WHERE model = ?", [.text($0)]) } ?? Staging.all(db)
            // Sorted here: the database's collation differs by backend.
            return rows.sorted { ($0.model, $0.version, $0.node) < ($1.model, $1.version, $1.node) }
        }
    }

    /// Writes rows (insert or replace), all in one transaction; `verifications` go with them (a
    /// finished staging records each file as verified on its node).
    public func record(stagings rows: [Staging], verifications: [Verification] = []) throws {
        guard !rows.isEmpty || !verifications.isEmpty else { return }
        try write("recording \(rows.count) staging record(s)") { db in
            // One row per key, the last given winning, as writing them one after another would.
            var seen = Set<String>()
            let unique = rows.reversed().filter { seen.insert("\($0.node)\u{0}\($0.model)\u{0}\($0.version)").inserted }.reversed()
            try Staging.upsert(Array(unique), key: ["node", "model", "version"], into: db)
            try Verification.append(verifications, into: db)
        }
    }
}
