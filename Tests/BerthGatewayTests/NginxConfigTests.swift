import BerthGateway
import BerthModel
import Foundation
import Testing

/// Rendering against files in Golden/ (BERTH_UPDATE_GOLDEN=1 rewrites them), and each of them
/// accepted by a real `nginx -t`.
@Suite("nginx configuration")
struct NginxConfigTests {
    static let paths = NginxPaths(prefix: "/var/lib/berth/gateways/public", config: "/var/lib/berth/gateways/public/nginx.conf",
                                  pidFile: "/var/lib/berth/gateways/public/nginx.pid")
    static let spec = GatewaySpec(listen: 8080, routes: [Route(deployment: "chat", weight: 90), Route(deployment: "chat-canary", weight: 10)],
                                  rateLimit: RateLimit(rate: "20r/s", burst: 40))

    static var cases: [(name: String, spec: GatewaySpec, members: [UpstreamMember])] {
        let routes = spec.routes
        var mixed = replicas("chat", 3, port: 21000)
        mixed[1].ready = false
        mixed[2].leaving = "replaced by berth-chat-2-0badc0de"
        var system = spec
        system.managed = false
        system.configPath = "/etc/nginx/conf.d/berth-public.conf"
        system.rateLimit = nil
        return [
            ("no-ready-replicas", spec, UpstreamWeights.members(routes: routes, candidates: replicas("chat", 2, port: 21000, ready: false))),
            ("one-replica", spec, UpstreamWeights.members(routes: [routes[0]], candidates: replicas("chat", 1, port: 21000))),
            ("canary-unequal-replicas", spec, UpstreamWeights.members(routes: routes, candidates: replicas("chat", 3, port: 21000) + replicas("chat-canary", 1, port: 21100))),
            ("reduced-weights", GatewaySpec(listen: 9000, routes: [Route(deployment: "a", weight: 1), Route(deployment: "b", weight: 999_999)]),
             UpstreamWeights.members(routes: [Route(deployment: "a", weight: 1), Route(deployment: "b", weight: 999_999)],
                                     candidates: replicas("a", 3, port: 21000) + replicas("b", 2, port: 21100))),
            ("leaving-and-not-ready", spec, UpstreamWeights.members(routes: routes, candidates: mixed)),
            ("system-nginx", system, UpstreamWeights.members(routes: routes, candidates: replicas("chat", 2, port: 21000))),
        ]
    }

    static var golden: URL { Bundle.module.resourceURL!.appendingPathComponent("Golden") }
    static var sourceGolden: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden") }

    @Test(arguments: cases.map(\.name))
    func rendering_matchesTheGoldenFile(name: String) throws {
        let c = Self.cases.first { $0.name == name }!
        let text = NginxConfig.render(gateway: "public", spec: c.spec, members: c.members,
                                      paths: c.spec.managed ? Self.paths : NginxPaths.system(gateway: "public", spec: c.spec))
        if ProcessInfo.processInfo.environment["BERTH_UPDATE_GOLDEN"] == "1" {
            try text.write(to: Self.sourceGolden.appendingPathComponent("\(name).conf"), atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: Self.golden.appendingPathComponent("\(name).conf"), encoding: .utf8)
        #expect(text == expected, "Golden/\(name).conf differs; BERTH_UPDATE_GOLDEN=1 rewrites it after a deliberate change")
    }

    @Test func noReadyReplica_answers503_withoutAnUpstream() throws {
        let text = try String(contentsOf: Self.golden.appendingPathComponent("no-ready-replicas.conf"), encoding: .utf8)
        #expect(!text.contains("upstream "))
        #expect(text.contains("return 503"))
    }

    @Test func longGenerations_streamUnbuffered_withLongTimeouts_andTheUsualHeaders() throws {
        let text = try String(contentsOf: Self.golden.appendingPathComponent("canary-unequal-replicas.conf"), encoding: .utf8)
        for line in ["proxy_buffering off;", "proxy_request_buffering off;", "proxy_read_timeout 3600s;", "proxy_set_header Host $host;",
                     "proxy_set_header X-Real-IP $remote_addr;", "limit_req_status 429;", "limit_req zone=berth_public_20r_per_s_40 burst=40 nodelay;",
                     "location = /healthz", "server 10.0.0.1:21000 weight=3;", "server 10.0.0.1:21100 weight=1;"] {
            #expect(text.contains(line), "\(line)")
        }
    }

    /// A gateway stored before its paths were checked (or edited in the database) is refused
    /// before anything is written, renamed or signalled.
    @Test(arguments: [
        ("/tmp/FOLDER/berth.conf", "/run/nginx.pid", "configuration path \"/tmp/FOLDER/berth.conf\" lies outside /etc/nginx/"),
        ("/etc/nginx/conf.d/../../../tmp/FOLDER/berth.conf", "/run/nginx.pid", "is not normalized"),
        ("/etc/nginx/conf.d/berth.conf\nuser root;", "/run/nginx.pid", "\"/etc/nginx/conf.d/berth.conf\\nuser root;\" has characters other than"),
        ("/etc/nginx/conf.d/berth.conf", "/tmp/FOLDER/nginx.pid", "pid file \"/tmp/FOLDER/nginx.pid\" lies outside /run/ and /var/run/"),
    ])
    func systemNginx_withAStoredPathOutsideItsFolders_refusesBeforeWriting(config: String, pidFile: String, says: String) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("berth-paths-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let name = folder.split(separator: "/").last.map(String.init)!
        var spec = GatewaySpec(listen: 8080, managed: false, routes: [Route(deployment: "chat", weight: 1)])
        spec.configPath = config.replacingOccurrences(of: "FOLDER", with: name)
        spec.pidFile = pidFile.replacingOccurrences(of: "FOLDER", with: name)
        let nginx = Nginx(paths: .system(gateway: "public", spec: spec, folders: .standard), managed: false, folders: .standard)
        let says = says.replacingOccurrences(of: "FOLDER", with: name)
        let tested = #expect(throws: NginxError.self) { try nginx.test("events {}\n") }
        #expect(tested?.description.contains(says) == true, "\(tested?.description ?? "")")
        #expect(tested?.code == .pathRefused)
        #expect(tested?.description.contains("while preparing a system nginx's gateway configuration") == true)
        let installed = #expect(throws: NginxError.self) { try nginx.install() }
        #expect(installed?.description.contains(says) == true && installed?.code == .pathRefused)
        #expect(nginx.checkInstalled()?.contains(says) == true)
        #expect(nginx.masterPID() == nil)
        #expect(nginx.installed() == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty, "nothing written")
    }

    /// Every golden configuration passes a real `nginx -t` (files moved under a temporary prefix).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["BERTH_INTEGRATION"] == "1", "needs nginx; set BERTH_INTEGRATION=1"),
          arguments: cases.map(\.name))
    func goldenFiles_passNginxTest(name: String) throws {
        let c = Self.cases.first { $0.name == name }!
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("berth-nginx-t-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let paths = c.spec.managed ? NginxPaths.managed(stateFolder: folder, gateway: "public")
            : NginxPaths(prefix: folder, config: folder + "/conf.d/berth-public.conf", pidFile: folder + "/nginx.pid")
        let text = NginxConfig.render(gateway: "public", spec: c.spec, members: c.members, paths: paths)
        let refusal = try Nginx(paths: paths, managed: c.spec.managed, folders: SystemNginxFolders(config: folder + "/", pid: [folder + "/"])).test(text)
        #expect(refusal == nil, "\(refusal ?? "")")
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["BERTH_INTEGRATION"] == "1", "needs nginx; set BERTH_INTEGRATION=1"))
    func nginxT_refusal_comesBackInNginxsWords() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("berth-nginx-t-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let nginx = Nginx(paths: .managed(stateFolder: folder, gateway: "g"), managed: true)
        let refusal = try nginx.test("events {}\nhttp { server { listen 8080; frobnicate on; } }\n")
        #expect(refusal?.contains("unknown directive \"frobnicate\"") == true, "\(refusal ?? "nil")")
    }
}
