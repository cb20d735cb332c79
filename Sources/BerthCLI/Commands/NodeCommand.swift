import ArgumentParser
import BerthModel
import BerthStore
import Foundation

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Hold a node for maintenance, drain it, or promote a standby by hand.",
        discussion: """
            Holds are kept in the state beside the desired state, not in its revisions: re-applying \
            manifests or rolling back never lifts a cordon. Each change is an event naming who made it \
            (`berth describe node NAME`). The running controller acts on them at its next pass.
              cordon    no new replicas go to the node; those running stay
              drain     cordon, and move every replica elsewhere, each successor ready before the old one stops
              uncordon  lift a cordon or a drain
              promote   make a standby (or a node that rejoined as a standby) active now
            """,
        subcommands: [Cordon.self, Uncordon.self, Drain.self, Promote.self])

    struct Target: ParsableArguments {
        @Argument(help: "The node's name.")
        var name: String

        @Option(name: .shortAndLong, help: "Why; kept with the hold and in the node's events.")
        var message: String = ""

        @Option(help: ArgumentHelp("Who asks; default $USER.", valueName: "name"))
        var author: String?

        @OptionGroup var state: StateOptions

        func change(_ change: NodeHoldChange, done: (NodeSpec) -> String) throws {
            try reportingErrors {
                guard let store = try state.openForReading() else { throw NotFound(message: "no state yet: nothing to \(change.rawValue)") }
                guard let spec = try store.object(ObjectKey(.node, name))?.resource.node else {
                    let known = try store.objects().filter { $0.resource.kind == .node }.map(\.resource.name).sorted()
                    throw NotFound(message: "no node \"\(name)\"" + (known.isEmpty ? "" : " (nodes: \(known.joined(separator: ", ")))"))
                }
                try store.change(node: name, change, author: author ?? Identity.currentUser, reason: message)
                Console.print(done(spec))
                if try store.liveLeaseHolder() == nil {
                    Console.note("no controller is running on this state: the change takes effect when one starts (`berth controller`)")
                }
            }
        }
    }

    struct Cordon: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let no new replica onto a node; running ones stay.")
        @OptionGroup var target: Target
        func run() async throws {
            try target.change(.cordon) { _ in "node/\(target.name) cordoned: no new replicas go there" }
        }
    }

    struct Uncordon: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lift a cordon or a drain.")
        @OptionGroup var target: Target
        func run() async throws {
            try target.change(.uncordon) { _ in "node/\(target.name) uncordoned: it takes replicas again" }
        }
    }

    struct Drain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move every replica off a node, each successor ready elsewhere before the old one stops.",
            discussion: "The node stays cordoned afterwards; `berth node uncordon` lets replicas back. `berth get replicas` shows them move.")
        @OptionGroup var target: Target
        func run() async throws {
            try target.change(.drain) { _ in "node/\(target.name) draining: its replicas move to other nodes as successors become ready" }
        }
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a standby node (or one that rejoined as a standby) active.")
        @OptionGroup var target: Target
        func run() async throws {
            try target.change(.promote) { spec in
                spec.role == .standby ? "node/\(target.name) will be promoted to active by the controller"
                    : "node/\(target.name) will be made active again by the controller if it rejoined as a standby"
            }
        }
    }
}
