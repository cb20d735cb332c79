import ArgumentParser
import BerthDocker
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
              discover  read the node's GPUs from nvidia-smi on the node
              gpu       take one GPU out of service, or return one the controller took out
            """,
        subcommands: [Cordon.self, Uncordon.self, Drain.self, Promote.self, Discover.self, GPU.self])

    /// The stored node `name`; `NotFound` naming the stored nodes otherwise.
    static func storedNode(_ name: String, in store: StateStore) throws -> NodeSpec {
        if let spec = try store.object(ObjectKey(.node, name))?.resource.node { return spec }
        let known = try store.objects().filter { $0.resource.kind == .node }.map(\.resource.name).sorted()
        throw NotFound(message: "no node \"\(name)\"" + (known.isEmpty ? "" : " (nodes: \(known.joined(separator: ", ")))"))
    }

    /// Says so when no controller runs on `store`: a hold waits for one.
    static func noteWithoutController(_ store: StateStore) throws {
        if try store.liveLeaseHolder() == nil {
            Console.note("no controller is running on this state: the change takes effect when one starts (`berth controller`)")
        }
    }

    struct Target: ParsableArguments {
        @Argument(help: "The node's name.")
        var name: String

        @Option(name: .shortAndLong, help: "Why; kept with the hold and in the node's events.")
        var message: String = ""

        @Option(help: ArgumentHelp("Who asks; default the person behind sudo, else $USER.", valueName: "name"))
        var author: String?

        @OptionGroup var state: StateOptions

        func change(_ change: NodeHoldChange, done: (NodeSpec) -> String) throws {
            try reportingErrors {
                guard let store = try state.openForReading() else { throw NotFound(message: "no state yet: nothing to \(change.rawValue)") }
                let spec = try NodeCommand.storedNode(name, in: store)
                try store.change(node: name, change, author: author ?? Identity.currentUser, reason: message)
                Console.print(done(spec))
                try NodeCommand.noteWithoutController(store)
            }
        }
    }

    struct GPU: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gpu",
            abstract: "Take one GPU out of service, or return it to service.",
            discussion: """
                The controller takes a GPU out of service when its health check (nvidia-smi, each image \
                round) finds it missing, with another UUID than declared, with uncorrectable ECC errors or \
                a failed row remapping. Nothing is placed on it any more, and the replica holding it moves \
                the way a drain moves it: its successor ready first (with no room elsewhere it keeps \
                serving). It stays out until an operator returns it with --uncordon, recorded with author \
                and reason in the node's events (`berth describe node NAME`); reset the GPU or reload the \
                driver first: the same lasting figure does not take it out again, a new one does. \
                --cordon takes one out by hand.
                """)

        @Argument(help: "The node's name.")
        var node: String

        @Argument(help: "The GPU's index on the node (as nvidia-smi numbers it).")
        var index: Int

        @Flag(help: "Return the GPU to service.")
        var uncordon = false

        @Flag(help: "Take the GPU out of service by hand.")
        var cordon = false

        @Option(name: .shortAndLong, help: "Why; kept in the node's events.")
        var message: String = ""

        @Option(help: ArgumentHelp("Who asks; default the person behind sudo, else $USER.", valueName: "name"))
        var author: String?

        @OptionGroup var state: StateOptions

        func validate() throws {
            guard uncordon != cordon else { throw ValidationError("say --uncordon (return it to service) or --cordon (take it out)") }
            guard index >= 0 else { throw ValidationError("a GPU index is 0 or more") }
        }

        func run() async throws {
            try reportingErrors {
                guard let store = try state.openForReading() else { throw NotFound(message: "no state yet: no node \"\(node)\"") }
                let spec = try NodeCommand.storedNode(node, in: store)
                let who = author ?? Identity.currentUser
                if uncordon {
                    let hold = try store.returnGPU(node: node, gpu: index, author: who, reason: message)
                    Console.print("node/\(node) GPU \(index) returned to service (it was out: \(hold.fault.rawValue), \(hold.detail))")
                } else {
                    guard let device = spec.gpus.resolvedDevices.first(where: { $0.index == index }) else {
                        throw NotFound(message: "node \(node) declares no GPU \(index) (GPUs 0–\(max(0, spec.gpus.count - 1)))")
                    }
                    let detail = message.isEmpty ? "taken out by \(who)" : "taken out by \(who): \(message)"
                    let added = try store.holdGPUs([GPUHold(node: node, gpu: index, uuid: device.uuid ?? "", fault: .operatorHold, detail: detail, author: who)])
                    Console.print(added.isEmpty ? "node/\(node) GPU \(index) was already out of service"
                                                : "node/\(node) GPU \(index) out of service: nothing new goes there, and its replica moves")
                }
                try NodeCommand.noteWithoutController(store)
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

    struct Discover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read a node's GPUs from nvidia-smi on the node, as its manifest's gpus.",
            discussion: """
                Runs `nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version,mig.mode.current` \
                in a short-lived container on the node (agentless, as `model verify --node`): with \
                runtime: nvidia every GPU is requested and the NVIDIA Container Toolkit mounts the \
                driver's nvidia-smi into the image; otherwise the image's own nvidia-smi answers. \
                Prints the node's `gpus:` with each device keyed by UUID. --write FILE writes the whole \
                Node manifest with those gpus (apply it with `berth apply -f FILE`); --diff compares \
                with what is stored and exits 1 when they differ. GPUs with MIG enabled are reported \
                (Berth places whole GPUs, not MIG instances). Exit 70 when the node cannot be asked, \
                6 when nvidia-smi's answer cannot be read.
                """)

        @Argument(help: "The node's name.")
        var name: String

        @Option(help: ArgumentHelp("Image to run nvidia-smi in (a glibc image; default: the first model version's image in the fleet).", valueName: "image"))
        var image: String?

        @Option(help: ArgumentHelp("Write the Node manifest with the discovered gpus to FILE.", valueName: "file"))
        var write: String?

        @Flag(help: "Compare with the stored node's gpus; exit 1 when they differ.")
        var diff = false

        @OptionGroup var state: StateOptions

        func run() async throws {
            guard let store = try reportingErrorsReturning({ try state.openForReading() }) ?? nil else { throw Exit.notFound }
            let objects = try reportingErrorsReturning { try store.objects().map(\.resource) }!
            guard let resource = objects.first(where: { $0.kind == .node && $0.name == name }), let spec = resource.node else {
                let known = objects.filter { $0.kind == .node }.map(\.name).sorted()
                Console.error("no node \"\(name)\" in \(state.path)" + (known.isEmpty ? "" : " (nodes: \(known.joined(separator: ", ")))"))
                throw Exit.notFound
            }
            guard let image = image ?? objects.compactMap({ $0.model?.versions.first?.image }).first else {
                Console.error("no image to run nvidia-smi in: the fleet has no model version; pass --image IMAGE (a glibc image, such as your serving image)")
                throw Exit.invalidInput
            }
            let output: String
            do {
                let client = try await DockerClient.connect(DockerEndpoint(spec.engine))
                Console.note("asking nvidia-smi on \(name) (image \(image))")
                output = try await GPUDiscovery.run(client, node: spec, image: image)
            } catch {
                Console.error("cannot ask node \(name)'s GPUs: \(error)")
                throw Exit.internalError
            }
            let gpus: [GPUDiscovery.GPU]
            do {
                gpus = try GPUDiscovery.parse(output)
            } catch {
                Console.error("node \(name): \(error)")
                throw Exit.verificationFailed
            }
            let found = GPUDiscovery.inventory(gpus)
            for g in gpus where g.mig {
                Console.note("GPU \(g.index) (\(g.uuid ?? "?")) has MIG enabled: Berth places it whole, not its MIG instances")
            }
            if let driver = gpus.compactMap(\.driver).first { Console.note("driver \(driver)") }
            var updated = resource
            updated.spec = .node({ var n = spec; n.gpus = found; return n }())
            let yaml = ResourceCoding.yaml(updated)
            if let write {
                do {
                    try yaml.write(toFile: write, atomically: true, encoding: .utf8)
                } catch {
                    Console.error("cannot write \(write): \(error.localizedDescription)")
                    throw Exit.invalidInput
                }
                Console.note("wrote node \(name) with \(found.count) GPU(s) to \(write); apply it with `berth apply -f \(write)`")
            }
            if diff {
                let lines = GPUDiscovery.differences(declared: spec.gpus, found: found)
                if lines.isEmpty {
                    Console.print("node \(name): the stored gpus match what nvidia-smi reports (\(found.count) GPU(s))")
                    return
                }
                Console.print(lines.map { "node \(name): \($0)" }.joined(separator: "\n"))
                throw Exit.differences
            }
            if write == nil { Console.print(Self.gpusBlock(yaml)) }
        }

        /// The `gpus:` part of a printed Node manifest.
        static func gpusBlock(_ yaml: String) -> String {
            var out: [Substring] = []
            var inside = false
            for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("  gpus:") { inside = true; out.append(line); continue }
                if inside {
                    if line.hasPrefix("    ") || line.hasPrefix("  -") { out.append(line) } else { break }
                }
            }
            return out.isEmpty ? yaml : out.joined(separator: "\n")
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
