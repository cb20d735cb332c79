import ArgumentParser
import BerthControl
import BerthGateway
import BerthModel
import BerthReconciler
import BerthStore
import Foundation

/// `berth gateway render NAME`.
struct GatewayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Work with gateways' nginx configuration.",
        subcommands: [Render.self])

    struct Render: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the nginx configuration of a gateway without applying it.",
            discussion: """
                Renders the stored gateway with the replicas the controller last reported ready \
                (`berth get replicas`); with no report yet, with no replica in service. Nothing is \
                written or reloaded.
                """)

        @Argument(help: "Name of the gateway.")
        var name: String

        @OptionGroup var state: StateOptions

        func run() throws {
            try reportingErrors {
                guard let store = try state.openForReading(),
                      let object = try store.object(ObjectKey(.gateway, name)), let spec = object.resource.gateway else {
                    throw NotFound(message: "gateway \"\(name)\" not found in \(state.path)")
                }
                let objects = try store.objects().map(\.resource)
                let members = GatewayRendering.members(spec: spec, objects: objects, status: try store.fleetStatus())
                let paths = spec.managed ? NginxPaths.managed(stateFolder: ControllerOptions.folder(ofStatePath: state.path), gateway: name)
                    : NginxPaths.system(gateway: name, spec: spec)
                Console.print(NginxConfig.render(gateway: name, spec: spec, members: members, paths: paths))
            }
        }
    }
}

enum GatewayRendering {
    /// The upstream a gateway would have with the replicas the last status reports ready.
    static func members(spec: GatewaySpec, objects: [Resource], status: FleetStatus) -> [UpstreamMember] {
        GatewayMembership.upstream(spec: spec, desired: objects, status: status)
    }

    static func table(_ gateways: [Resource], status: FleetStatus) -> String {
        var t = Table("NAME", "LISTEN", "MANAGED", "ROUTES", "RATE LIMIT", "IN", "OUT", "NGINX", "CONDITIONS")
        let byName = Dictionary(uniqueKeysWithValues: status.gateways.map { ($0.name, $0) })
        for r in gateways {
            guard let g = r.gateway else { continue }
            let total = g.routes.reduce(0) { $0 + $1.weight }
            let routes = g.routes.map { "\($0.deployment)=\(total == 0 ? 0 : $0.weight * 100 / total)%" }.joined(separator: ",")
            let rate = g.rateLimit.map { "\($0.rate) burst \($0.burst)" } ?? "none"
            guard let s = byName[r.name] else {
                t.add([r.name, "\(g.listen)", g.managed ? "yes" : "no", routes, rate, "-", "-", "-", "not seen by a controller yet"])
                continue
            }
            let conditions = s.conditions.filter { $0.type == ConditionType.degraded.rawValue ? $0.status : true }
                .map { $0.type + ($0.status ? "" : "=False") + ($0.type == ConditionType.degraded.rawValue ? " (\($0.message.prefix(60)))" : "") }
            t.add([r.name, "\(g.listen)", g.managed ? "yes" : "no", routes, rate, "\(s.members.filter(\.inService).count)",
                   "\(s.members.filter { !$0.inService }.count)", s.nginxPID.map { "pid \($0)" } ?? "down", conditions.joined(separator: ", ")])
        }
        return t.rendered
    }

    static func describe(_ object: StoredObject, status: GatewayStatus?, events: [Event]) -> String {
        let spec = object.resource.gateway!
        var out = "Name:        \(object.resource.name)\n"
        out += "Listen:      \(spec.listen)\n"
        out += "nginx:       \(spec.managed ? "managed by Berth" : "system nginx, pid file \(NginxPaths.system(gateway: object.resource.name, spec: spec).pidFile)")\n"
        out += "Routes:      \(spec.routes.map { "\($0.deployment) weight \($0.weight)" }.joined(separator: ", "))\n"
        out += "Rate limit:  \(spec.rateLimit.map { "\($0.rate), burst \($0.burst), 429 past it" } ?? "none")\n"
        out += "Timeouts:    read \(spec.readTimeout) s, drain \(spec.drain) s\n"
        guard let status else { return out + "\nNo controller has reported on this gateway yet (start `berth controller`).\n" }
        out += "Config:      \(status.configPath)\(status.configHash.map { " (hash \($0))" } ?? "")\n"
        out += "Master:      \(status.nginxPID.map { "pid \($0)" } ?? "not running")\n"
        out += "Last reload: \(status.lastReload.map { "\(StatusRendering.age($0))" + (status.lastReloadMilliseconds.map { ", new workers after \($0) ms" } ?? "") } ?? "none by this controller")\n"
        out += "\nConditions:\n" + StatusRendering.conditions(status.conditions)
        var t = Table("DEPLOYMENT", "REPLICA", "ENDPOINT", "WEIGHT", "SHARE", "IN", "WHY OUT")
        for m in status.members {
            t.add([m.deployment, "\(m.replica)", m.endpoint, m.inService ? "\(m.weight)" : "-", String(format: "%.1f%%", m.share * 100),
                   m.inService ? "yes" : "no", m.reason])
        }
        out += "\nUpstream:\n" + (t.rows.isEmpty ? "  (no replicas)\n" : t.rendered)
        out += "\nEvents (newest last):\n" + StatusRendering.events(events)
        return out
    }
}
