import BerthModel
import Foundation

/// What an operator asks of a node.
public enum NodeHoldChange: String, Sendable, CaseIterable {
    case cordon, uncordon, drain, promote

    var reason: String {
        switch self {
        case .cordon: Reason.nodeCordoned.rawValue
        case .uncordon: Reason.nodeUncordoned.rawValue
        case .drain: Reason.nodeDraining.rawValue
        case .promote: Reason.promotionRequested.rawValue
        }
    }
}

extension StateStore {
    /// Every node's hold, by node name.
    public func nodeHolds() throws -> [String: NodeHold] {
        try read("reading node holds") { db in
            Dictionary(uniqueKeysWithValues: try NodeHold.all(db).map { ($0.node, $0) })
        }
    }

    /// Applies `change` to `node`'s hold and records an event saying who asked and why, in one
    /// transaction. Returns the hold as it stands afterwards.
    @discardableResult
    public func change(node: String, _ change: NodeHoldChange, author: String, reason: String, now: Date = Date()) throws -> NodeHold {
        try write("changing the hold on node \(node)") { db in
            var hold = try NodeHold.one(db, "WHERE node = ?", [.text(node)]) ?? NodeHold(node: node, author: author, since: now)
            switch change {
            case .cordon: hold.cordoned = true
            case .uncordon: hold.cordoned = false; hold.draining = false
            case .drain: hold.cordoned = true; hold.draining = true
            case .promote: hold.promote = true
            }
            hold.author = author
            hold.reason = reason
            hold.since = now
            if hold.isEmpty {
                try db.execute("DELETE FROM nodeHold WHERE node = ?", [.text(node)])
            } else {
                try hold.upsert(db, key: ["node"])
            }
            let why = reason.isEmpty ? "" : ": \(reason)"
            var event = Event(time: now, revision: nil, kind: "node", name: node, reason: change.reason, message: "\(change.rawValue) by \(author)\(why)")
            try event.insert(db)
            return hold
        }
    }

    /// Marks `node`'s promotion request as carried out.
    public func promotionDone(node: String) throws {
        try write("clearing the promotion request of node \(node)") { db in
            try db.execute("UPDATE nodeHold SET promote = ? WHERE node = ?", [.bool(false), .text(node)])
            try db.execute("DELETE FROM nodeHold WHERE node = ? AND NOT cordoned AND NOT draining AND NOT promote", [.text(node)])
        }
    }
}
