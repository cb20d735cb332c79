import ArgumentParser
import BerthControl
import BerthModel
import BerthScheduler
import BerthStore
import Foundation

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show where the scheduler would place every replica of the stored desired state.",
        discussion: """
            Runs the GPU scheduler over the stored nodes and deployments, every active node taken as \
            ready, and prints each replica's node, GPUs and host port — or, for a replica that cannot \
            be placed, each node and why it was rejected. Stores nothing.

            What if nodes are lost? --fail NODE[,NODE…] takes those nodes as gone from the fleet as \
            it stands (nodes the controller saw fail, promoted standbys, cordons and drains count): \
            as failover would, \
            one standby is promoted in place of each lost active node (most GPUs first), replicas on \
            the other nodes stay, and those of the lost nodes are placed again; it prints where each \
            would go, or why it would not fit. --fail-any asks that for each active node alone (N+1). \
            Exit status 5 when something placed now would not fit after the loss.
            """)

    @Option(name: .shortAndLong, help: "Output format: table or json.")
    var output: OutputFormat = .table

    @Option(help: ArgumentHelp("Take these nodes as lost (comma-separated): could the fleet absorb it?", valueName: "node,…"))
    var fail: String?

    @Flag(help: "Take each active node as lost, one at a time (N+1): which losses the fleet could not absorb.")
    var failAny = false

    @OptionGroup var state: StateOptions

    func validate() throws {
        if fail != nil && failAny { throw ValidationError("give --fail NODE[,NODE…] or --fail-any, not both") }
        if let fail, fail.split(separator: ",").isEmpty { throw ValidationError("--fail needs node names, e.g. --fail gpu-a1,gpu-a2") }
    }

    func run() throws {
        try reportingErrors {
            guard let store = try state.openForReading() else { return }
            let objects = try store.objects().map(\.resource)
            if fail != nil || failAny {
                // Right now: as the controller last saw the nodes (failed, promoted, rejoined) and
                // with operators' holds.
                let nodes = (try? store.fleetStatus().nodes) ?? []
                try whatIf(NPlusOne.fleet(desired: objects, nodes: nodes, holds: try store.nodeHolds()))
                return
            }
            let schedule = FleetInput(objects).schedule()
            switch output {
            case .json, .yaml: Console.print(PlanRendering.json(schedule))
            case .table: Console.print(PlanRendering.table(schedule))
            }
            if !schedule.unplaced.isEmpty {
                Console.note("\(schedule.unplaced.count) replica(s) cannot be placed")
            }
        }
    }
}

extension Plan {
    func whatIf(_ fleet: FleetInput) throws {
        let outcomes: [WhatIf.Outcome]
        if let fail {
            let names = Set(fail.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            let known = Set(fleet.nodes.map(\.name))
            let unknown = names.subtracting(known).sorted()
            guard unknown.isEmpty else {
                throw NotFound(message: "no node \(unknown.joined(separator: ", ")) in \(state.path); nodes: \(known.sorted().joined(separator: ", "))")
            }
            outcomes = [WhatIf.losing(names, fleet)]
        } else {
            outcomes = WhatIf.losingAnyOne(fleet)
        }
        switch output {
        case .json, .yaml: Console.print(PlanRendering.json(outcomes))
        case .table: Console.print(fail != nil ? PlanRendering.table(outcomes[0]) : PlanRendering.table(any: outcomes))
        }
        if outcomes.contains(where: { !$0.fits }) { throw Exit.infeasible }
    }
}

enum PlanRendering {
    static func lostLine(_ o: WhatIf.Outcome) -> String {
        let promoted = o.promoted.isEmpty ? "no standby is promoted" : "standby \(o.promoted.joined(separator: ", ")) promoted"
        let verdict = o.fits ? "everything placed now still fits" : "\(o.unplaced.count) replica(s) would not fit"
        return "If \(o.lost.joined(separator: ", ")) \(o.lost.count == 1 ? "is" : "are") lost: \(promoted); \(o.moves.count) replica(s) move; \(verdict)."
    }

    static func table(_ o: WhatIf.Outcome) -> String {
        var out = lostLine(o) + "\n"
        guard !o.moves.isEmpty else { return out + (o.alreadyUnplaced.isEmpty ? "" : "(\(o.alreadyUnplaced.count) replica(s) cannot be placed even with every node: `berth plan`)\n") }
        var t = Table("DEPLOYMENT", "REPLICA", "FROM", "TO")
        let reasons = Dictionary(o.unplaced.map { ("\($0.deployment)/\($0.replica)", $0.reason) }, uniquingKeysWith: { a, _ in a })
        for m in o.moves {
            let to = m.to.map { $0.map { "\($0.node) (GPUs \($0.gpus.map(String.init).joined(separator: ",")), port \($0.hostPort))" }.joined(separator: " + ") }
                ?? "does not fit: \(reasons["\(m.deployment)/\(m.replica)"] ?? "no node has room")"
            t.add([m.deployment, "\(m.replica)", m.from.joined(separator: "+"), to])
        }
        out += t.rendered
        if !o.alreadyUnplaced.isEmpty { out += "\n(\(o.alreadyUnplaced.count) replica(s) cannot be placed even with every node: `berth plan`)" }
        return out
    }

    static func table(any outcomes: [WhatIf.Outcome]) -> String {
        var t = Table("NODE LOST", "PROMOTED", "MOVES", "WOULD NOT FIT")
        for o in outcomes {
            let misfits = o.unplaced.map { "\($0.deployment)/\($0.replica): \($0.reason)" }.joined(separator: "; ")
            t.add([o.lost.joined(separator: ","), o.promoted.isEmpty ? "-" : o.promoted.joined(separator: ","), "\(o.moves.count)", misfits.isEmpty ? "-" : misfits])
        }
        let bad = outcomes.filter { !$0.fits }.map { $0.lost.joined(separator: ",") }
        let verdict = outcomes.isEmpty ? "no active node to lose"
            : bad.isEmpty ? "N+1: the fleet absorbs the loss of any one active node"
            : "N+1: losing \(bad.joined(separator: " or ")) would leave replicas unplaced"
        return t.rendered.trimmingCharacters(in: .newlines) + "\n" + verdict
    }

    struct LossEntry: Encodable {
        struct MoveEntry: Encodable {
            var deployment: String
            var replica: Int
            var from: [String]
            var to: [Slice]?
            var unschedulable: String?
        }
        var lost: [String]
        var promoted: [String]
        var fits: Bool
        var moves: [MoveEntry]
        var alreadyUnplaced: Int
    }

    static func json(_ outcomes: [WhatIf.Outcome]) -> String {
        let entries = outcomes.map { o in
            let reasons = Dictionary(o.unplaced.map { ("\($0.deployment)/\($0.replica)", $0.reason) }, uniquingKeysWith: { a, _ in a })
            return LossEntry(lost: o.lost, promoted: o.promoted, fits: o.fits,
                             moves: o.moves.map { .init(deployment: $0.deployment, replica: $0.replica, from: $0.from, to: $0.to,
                                                        unschedulable: $0.to == nil ? reasons["\($0.deployment)/\($0.replica)"] : nil) },
                             alreadyUnplaced: o.alreadyUnplaced.count)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(entries), as: UTF8.self)
    }

    static func table(_ s: Schedule) -> String {
        var t = Table("DEPLOYMENT", "REPLICA", "NODE", "GPUS", "HOST PORT", "STATUS")
        var rows: [(String, Int, [String])] = []
        for a in s.assignments {
            for (i, slice) in a.slices.enumerated() {
                rows.append((a.deployment, a.replica, [a.deployment, "\(a.replica)" + (a.isGang ? " (\(i + 1)/\(a.slices.count))" : ""),
                                                      slice.node, slice.gpus.map(String.init).joined(separator: ","), "\(slice.hostPort)", "placed"]))
            }
        }
        for u in s.unplaced {
            rows.append((u.deployment, u.replica, [u.deployment, "\(u.replica)", "-", "-", "-", "Unschedulable: \(u.reason)"]))
        }
        for row in rows.sorted(by: { ($0.0, $0.1) < ($1.0, $1.1) }) { t.add(row.2) }
        return t.rendered
    }

    struct Entry: Encodable {
        var deployment: String
        var replica: Int
        var slices: [Slice]?
        var unschedulable: String?
    }

    static func json(_ s: Schedule) -> String {
        let entries = s.assignments.map { Entry(deployment: $0.deployment, replica: $0.replica, slices: $0.slices) }
            + s.unplaced.map { Entry(deployment: $0.deployment, replica: $0.replica, unschedulable: $0.reason) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(entries.sorted { ($0.deployment, $0.replica) < ($1.deployment, $1.replica) }), as: UTF8.self)
    }
}
