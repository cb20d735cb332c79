import Foundation

/// The local cluster (`scripts/local-cluster up`) as the end-to-end tests see it.
enum LocalCluster {
    static let nodes = BerthProcess.root.appendingPathComponent("state/local-cluster/nodes.yaml").path
    static let fleet = BerthProcess.root.appendingPathComponent("examples/local/fleet.yaml").path

    static func docker(_ node: Int, _ args: [String]) throws -> String {
        try Spawn.run(["/usr/bin/docker", "-H", "unix:///run/berth-local/node-\(node)/docker.sock"] + args).1
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Leaves the cluster's nodes without Berth containers (`scripts/demo` may have left its fleet running).
    static func removeBerthContainers() throws {
        for n in 1...3 {
            let ids = try Self.docker(n, ["ps", "-aq", "--filter", "label=io.berth.managed-by=berth"]).split(separator: "\n").map(String.init)
            if !ids.isEmpty { _ = try Self.docker(n, ["rm", "-f"] + ids) }
        }
    }

    /// `name port version` of every running Berth container on the active nodes.
    static func running() throws -> [String] {
        try (1...2).flatMap { n in
            try Self.docker(n, ["ps", "--filter", "label=io.berth.managed-by=berth", "--format", "{{.Names}} {{.Label \"io.berth.host-port\"}} {{.Label \"io.berth.model-version\"}}"])
                .split(separator: "\n").map(String.init)
        }.sorted()
    }

    static func answers(_ port: String) -> String {
        (try? BerthProcess.curl("http://127.0.0.1:\(port)/v2/models/standin/infer")) ?? ""
    }

}
