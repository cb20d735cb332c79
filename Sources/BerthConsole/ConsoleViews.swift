import BerthModel
import BerthStore
import Foundation

// The models of the deployments, history and events pages: plain values the templates read,
// made from the status and the store without any I/O of their own.

struct DeploymentsView {
    struct Row {
        var name: String
        var version: String
        var ready: Int
        var desired: Int
        var updatedReady: Int
        var progressMax: Int
        var rollout: String
        var conditions: [ConditionRow]
    }

    struct ConditionRow {
        var type: String
        var reason: String
        var message: String?
        var cls: String
    }

    struct Gateway {
        var name: String
        var listen: Int
        var split: [Share]
        var splitText: String
    }

    struct Share {
        var label: String
        var percent: String
        var cls: String
    }

    var deployments: [Row]
    var gateways: [Gateway]

    init(status: FleetStatus) {
        let colour = FleetView.colours(status.deployments.map(\.name))
        deployments = status.deployments.sorted { $0.name < $1.name }.map { d in
            Row(name: d.name, version: d.modelVersion, ready: d.ready, desired: d.desired, updatedReady: d.updatedReady,
                progressMax: max(d.desired, 1), rollout: d.rollout.rawValue,
                conditions: d.conditions.map { ConditionRow(type: $0.type, reason: $0.reason, message: $0.message.isEmpty ? nil : $0.message, cls: $0.isWarning ? "warn" : "ok") })
        }
        gateways = status.gateways.sorted { $0.name < $1.name }.map { g in
            // The share of traffic each deployment gets: the sum of its serving members' shares.
            var share: [String: Double] = [:]
            for m in g.members where m.inService { share[m.deployment, default: 0] += m.share }
            let parts = share.sorted { $0.key < $1.key }
            return Gateway(name: g.name, listen: g.listen,
                           split: parts.map { Share(label: $0.key, percent: String(format: "%.1f", $0.value * 100), cls: colour[$0.key] ?? "d7") },
                           splitText: parts.isEmpty ? "no replica in service"
                               : parts.map { "\($0.key) \(Int(($0.value * 100).rounded())) %" }.joined(separator: ", "))
        }
    }

    /// What the live stream sends for each deployment (the script fills these into the page).
    struct Live: Encodable, Equatable {
        var name: String
        var version: String
        var ready: Int
        var desired: Int
        var updatedReady: Int
        var rollout: String
    }

    static func live(_ status: FleetStatus) -> [Live] {
        status.deployments.sorted { $0.name < $1.name }.map {
            Live(name: $0.name, version: $0.modelVersion, ready: $0.ready, desired: $0.desired, updatedReady: $0.updatedReady, rollout: $0.rollout.rawValue)
        }
    }
}

struct HistoryView {
    struct Row {
        var number: Int64
        var previous: Int64
        var hasPrevious: Bool
        var iso: String
        var when: String
        var author: String
        var origin: String
        var message: String
        var changes: String
    }

    struct Snapshot {
        var id: String
        var when: String
        var revision: Int64
    }

    var revisions: [Row]
    var snapshots: [Snapshot]
    var snapshotsNote: String
    var latest: Int64
    var previous: Int64

    init(revisions: [RevisionSummary], snapshots: [SnapshotRecord], snapshotsNote: String) {
        let iso = ISO8601DateFormatter()
        self.revisions = revisions.map { s in
            let r = s.revision
            let counts = [(r.createdCount, "created"), (r.configuredCount, "configured"), (r.deletedCount, "deleted")]
                .filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }
            return Row(number: s.number, previous: s.number - 1, hasPrevious: s.number > 1, iso: iso.string(from: r.createdAt),
                       when: UTCTime.text(r.createdAt), author: r.author, origin: r.origin.rawValue, message: r.message,
                       changes: counts.isEmpty ? "no change" : counts.joined(separator: ", "))
        }
        self.snapshots = snapshots.map { Snapshot(id: $0.id, when: UTCTime.text($0.createdAt), revision: $0.revision) }
        self.snapshotsNote = snapshotsNote
        latest = revisions.first?.number ?? 0
        previous = max(latest - 1, 0)
    }
}

/// A node's own page: its row as on the fleet page, its actions, its recent events.
struct NodePage {
    var name: String
    var node: FleetView.Node?
    var events: [EventsView.Row]
}

struct EventsView {
    struct Row: Encodable {
        var id: Int64
        var time: String
        var reason: String
        var object: String
        var message: String
    }

    struct PromotionCard {
        struct Step {
            var label: String
            var at: String?
            var done: Bool
        }

        var failedNode: String
        var standby: String
        var state: String
        var cls: String
        var deadline: String
        var budget: String
        var reason: String
        var steps: [Step]
    }

    var promotions: [PromotionCard]
    var events: [Row]
    /// The newest event shown: the live stream goes on from there.
    var lastEvent: Int64

    static func row(_ e: Event) -> Row {
        Row(id: e.id ?? 0, time: UTCTime.text(e.time), reason: e.reason,
            object: [e.kind?.lowercased(), e.name].compactMap { $0 }.joined(separator: "/"), message: e.message)
    }

    init(promotions: [Promotion], events: [Event], now: Date) {
        self.events = events.map(Self.row)
        lastEvent = events.compactMap(\.id).max() ?? 0
        self.promotions = promotions.sorted { $0.detectedAt > $1.detectedAt }.map { p in
            // detected → scheduled → started → ready → in the gateway, against the deadline.
            let steps: [(String, Date?)] = [("detected", p.detectedAt), ("scheduled", p.scheduledAt), ("started", p.startedAt),
                                            ("ready", p.readyAt), ("in the gateway", p.gatewayAt)]
            let end = p.gatewayAt ?? now
            let used = Int(end.timeIntervalSince(p.detectedAt))
            let limit = Int(p.deadline.timeIntervalSince(p.detectedAt))
            return PromotionCard(
                failedNode: p.failedNode, standby: p.standby ?? "no standby", state: p.state.rawValue,
                cls: p.state == .failed ? "bad" : p.state == .succeeded ? "ok" : "warn",
                deadline: UTCTime.text(p.deadline),
                budget: "\(used / 60) min \(used % 60) s of \(limit / 60) min" + (p.gatewayAt == nil ? " so far" : ""),
                reason: p.reason,
                steps: steps.map { PromotionCard.Step(label: $0.0, at: $0.1.map { "+\(Int($0.timeIntervalSince(p.detectedAt))) s" }, done: $0.1 != nil) })
        }
    }
}

/// A unified diff, line by line, each marked added, deleted or a hunk header for its colour.
struct DiffView {
    struct Line {
        var text: String
        var cls: String
    }

    var heading: String
    var lines: [Line]
    /// Stored, not computed: templates see stored properties only.
    var hasLines: Bool

    init(heading: String, text: String?) {
        self.heading = heading
        lines = text.map(Self.lines) ?? []
        hasLines = !lines.isEmpty
    }

    static func lines(_ text: String) -> [Line] {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            let cls = line.hasPrefix("+++") || line.hasPrefix("---") ? "file"
                : line.hasPrefix("+") ? "add" : line.hasPrefix("-") ? "del" : line.hasPrefix("@@") ? "hunk" : ""
            return Line(text: String(line), cls: cls)
        }
    }
}
