import ArgumentParser
import BerthModel
import BerthStore

struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List stored objects of a kind, or show one.",
        discussion: """
            KIND: \(ResourceKind.acceptedSpellings), or all. `-o yaml` prints manifests that `berth apply` accepts. \
            `berth get replicas [DEPLOYMENT]` lists where the controller placed each replica (node, GPU \
            indices, host port) and how it does.
            """)

    @Argument(help: ArgumentHelp("Kind of object: node, model, deployment, gateway (plural and short forms work), or all.", valueName: "kind"))
    var kind: String

    @Argument(help: "Name of one object.")
    var name: String?

    @Option(name: .shortAndLong, help: "Output format: table, yaml or json.")
    var output: OutputFormat = .table

    @OptionGroup var state: StateOptions

    var isReplicas: Bool { ["replica", "replicas"].contains(kind.lowercased()) }

    func validate() throws {
        if isReplicas { return }
        if kind.lowercased() != "all", ResourceKind(userInput: kind) == nil {
            throw ValidationError("unknown kind \"\(kind)\"; expected one of: \(ResourceKind.acceptedSpellings), all")
        }
        if kind.lowercased() == "all", name != nil { throw ValidationError("a name needs a single kind, not `all`") }
    }

    func run() throws {
        if isReplicas { return try replicas() }
        try reportingErrors {
            let kinds = ResourceKind(userInput: kind).map { [$0] } ?? ResourceKind.allCases
            let store = try state.openForReading()
            var resources: [Resource] = []
            if let name, let kind = kinds.first {
                guard let object = try store?.object(ObjectKey(kind, name)) else {
                    throw NotFound(message: "\(kind.singular) \"\(name)\" not found in \(state.path)")
                }
                resources = [object.resource]
            } else if let store {
                resources = try kinds.count == 1 ? store.objects(kind: kinds[0]).map(\.resource) : store.objects().map(\.resource)
            }
            switch output {
            case .yaml: Console.print(ResourceCoding.yaml(resources))
            case .json: Console.print(ObjectRendering.json(resources))
            case .table:
                if resources.isEmpty {
                    Console.note("no \(kinds.count == 1 ? kinds[0].plural : "objects") found")
                    return
                }
                let status = try store?.fleetStatus() ?? FleetStatus(controller: nil, deployments: [], nodes: [])
                let sections = kinds.compactMap { k -> String? in
                    let ofKind = resources.filter { $0.kind == k }
                    guard !ofKind.isEmpty else { return nil }
                    let table = k == .gateway ? GatewayRendering.table(ofKind, status: status) : ObjectRendering.table(k, ofKind, status: status)
                    return (kinds.count > 1 ? "\(k.plural.uppercased())\n" : "") + table
                }
                Console.print(sections.joined(separator: "\n"))
            }
        }
    }

    func replicas() throws {
        try reportingErrors {
            guard let store = try state.openForReading() else { return }
            var deployments = try store.fleetStatus().deployments
            if let name {
                deployments = deployments.filter { $0.name == name }
                if deployments.isEmpty {
                    throw NotFound(message: "no status for deployment \"\(name)\" in \(state.path)"
                                   + (try store.object(ObjectKey(.deployment, name)) == nil ? ": no such deployment" : ": no controller has reported on it yet"))
                }
            }
            switch output {
            case .json, .yaml: Console.print(StatusRendering.json(deployments.map { ["deployment": AnyEncodable($0.name), "replicas": AnyEncodable($0.replicas)] }))
            case .table:
                if deployments.isEmpty { Console.note("no replicas reported yet; is `berth controller` running?"); return }
                Console.print(StatusRendering.replicas(deployments))
            }
        }
    }
}

struct AnyEncodable: Encodable {
    let encodeValue: (Encoder) throws -> Void
    init(_ value: some Encodable) { encodeValue = value.encode }
    func encode(to encoder: Encoder) throws { try encodeValue(encoder) }
}
