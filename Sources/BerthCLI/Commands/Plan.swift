import ArgumentParser
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
            """)

    @Option(name: .shortAndLong, help: "Output format: table or json.")
    var output: OutputFormat = .table

    @OptionGroup var state: StateOptions

    func run() throws {
        try reportingErrors {
            guard let store = try state.openForReading() else { return }
            let objects = try store.objects().map(\.resource)
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

enum PlanRendering {
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
