import Foundation
import Yams

extension DocumentReader {
    static func readGateway(_ field: Field) -> GatewaySpec? {
        guard let m = field.mapping(fields: ["listen", "managed", "routes", "rateLimit", "configPath", "pidFile", "drainSeconds", "readTimeoutSeconds"]) else { return nil }
        let listen = m.required("listen", expected: "a TCP port, 1–65535")?.int(in: 1...65535, expected: "a TCP port, 1–65535")
        let managedField = m.optional("managed")
        let managed = managedField?.bool()
        var routes: [Route]?
        if let items = m.required("routes", expected: "a list of routes")?.list() {
            var seen: Set<String> = []
            let parsed = items.compactMap { item -> Route? in
                guard let r = item.mapping(fields: ["deployment", "weight"]) else { return nil }
                let dep = r.required("deployment", expected: "the name of a Deployment")?.string(expected: "the name of a Deployment")
                let weightField = r.optional("weight")
                let weight = weightField?.int(in: 0...1_000_000, expected: "a traffic weight, 0–1000000")
                r.finish()
                guard let dep, weightField == nil || weight != nil else { return nil }
                if !seen.insert(dep).inserted {
                    item.fail("deployment \(dep) is routed twice", expected: "one route per deployment")
                    return nil
                }
                return Route(deployment: dep, weight: weight ?? 100)
            }
            if parsed.count == items.count {
                if parsed.isEmpty {
                    m.field.fail("routes is empty", expected: "at least one route")
                } else if parsed.allSatisfy({ $0.weight == 0 }) {
                    m.field.fail("every route has weight 0, so no traffic could be served", expected: "at least one route with weight > 0")
                } else {
                    routes = parsed
                }
            }
        }
        var rateLimit: RateLimit?
        let rateField = m.optional("rateLimit")
        if let rateField, let r = rateField.mapping(fields: ["rate", "burst"]) {
            let expected = "a rate such as \"100r/s\" or \"600r/m\""
            var rate: String?
            if let f = r.required("rate", expected: expected), let text = f.string(expected: expected) {
                if RateSyntax.isValid(text) { rate = text } else { f.fail("\"\(text)\" is not an nginx rate", expected: expected) }
            }
            let burstField = r.optional("burst")
            let burst = burstField?.int(in: 0...1_000_000, expected: "a burst size, 0–1000000")
            r.finish()
            if let rate, burstField == nil || burst != nil { rateLimit = RateLimit(rate: rate, burst: burst ?? 0) }
        }
        // Berth renames its file over configPath and signals the pid read from pidFile: both stay
        // inside the system nginx's folders.
        let folders = SystemNginxFolders.fromEnvironment()
        func path(_ name: String, _ check: (String) -> (problem: String, expected: String)?) -> (field: Field?, value: String?) {
            guard let f = m.optional(name) else { return (nil, nil) }
            guard let text = f.string(expected: "an absolute path") else { return (f, nil) }
            if managed ?? true {
                f.fail("\(name) is for a system nginx (managed: false); a managed gateway keeps its files under the state folder",
                       expected: "managed: false with \(name), or no \(name)")
                return (f, nil)
            }
            if let refused = check(text) {
                let shown = text.count > 80 ? String(text.prefix(80)) + "…" : text
                f.fail("\"\(shown.unicodeScalars.map { $0.escaped(asASCII: true) }.joined())\" \(refused.problem)", expected: refused.expected)
                return (f, nil)
            }
            return (f, text)
        }
        let configPath = path("configPath", { folders.check(configPath: $0) }), pidFile = path("pidFile", { folders.check(pidFile: $0) })
        let drainField = m.optional("drainSeconds")
        let drain = drainField?.int(in: 0...3600, expected: "seconds, 0–3600")
        let readField = m.optional("readTimeoutSeconds")
        let read = readField?.int(in: 1...86400, expected: "seconds, 1–86400")
        m.finish()
        guard let listen, let routes, managedField == nil || managed != nil, rateField == nil || rateLimit != nil,
              configPath.field == nil || configPath.value != nil, pidFile.field == nil || pidFile.value != nil,
              drainField == nil || drain != nil, readField == nil || read != nil else { return nil }
        return GatewaySpec(listen: listen, managed: managed ?? true, routes: routes, rateLimit: rateLimit,
                           configPath: configPath.value, pidFile: pidFile.value, drainSeconds: drain, readTimeoutSeconds: read)
    }
}
