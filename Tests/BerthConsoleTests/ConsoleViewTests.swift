@testable import BerthConsole
@testable import BerthControl
import BerthModel
import BerthStore
import Hummingbird
import Foundation
import Testing

/// The console's pages rendered from a status, without a controller or a browser.
@Suite("web console pages")
struct ConsoleViewTests {
    /// `nodes` active nodes of 8 GPUs, every GPU held by one of `deployments` deployments' replicas.
    static func status(nodes: Int, deployments: Int = 4, message: String = "") -> FleetStatus {
        let names = (0..<nodes).map { "node-\($0)" }
        var replicas: [String: [ReplicaStatus]] = [:]
        for (i, node) in names.enumerated() {
            for gpu in 0..<8 {
                let d = "model-\((i * 8 + gpu) % deployments)"
                replicas[d, default: []].append(ReplicaStatus(slot: replicas[d]?.count ?? 0, node: node, gpus: [gpu], hostPort: nil, container: nil,
                                                              modelVersion: "v1", phase: .ready, message: ""))
            }
        }
        let ds = replicas.keys.sorted().map { name in
            DeploymentStatus(name: name, objectRevision: 1, observedRevision: 1, modelVersion: "v1", desired: replicas[name]!.count,
                             ready: replicas[name]!.count, updated: replicas[name]!.count, updatedReady: replicas[name]!.count, rollout: .complete,
                             conditions: [], replicas: replicas[name]!, lastGoodRevision: 1)
        }
        let ns = names.map {
            NodeStatus(name: $0, role: "active", ready: message.isEmpty, reason: message.isEmpty ? "" : "EngineUnreachable", message: message,
                       lastHeartbeat: Date(), gpusTotal: 8, gpusAllocated: 8, containers: 8)
        }
        return FleetStatus(controller: nil, deployments: ds, nodes: ns)
    }

    static func render(_ template: String, _ model: Any) -> String {
        ConsoleTemplates.library.render(model, withTemplate: template) ?? ""
    }

    static func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    @Test func fleet_ofAThousandNodes_drawsEveryGPU_colouredByItsDeployment() {
        let view = FleetView(status: Self.status(nodes: 1000), telemetry: nil, now: Date(), author: "console")
        let html = Self.render("fleet", view)
        #expect(Self.count("<span class=\"tile ", in: html) == 8000)
        #expect(html.contains("aria-label=\"node-0: GPU 0 model-0, GPU 1 model-1, GPU 2 model-2, GPU 3 model-3, GPU 4 model-0, GPU 5 model-1, GPU 6 model-2, GPU 7 model-3\""))
        for d in 0..<4 { #expect(Self.count("class=\"tile d\(d)\"", in: html) == 2000, "model-\(d)") }
        #expect(Self.count("class=\"node\"", in: html) == 1000)
        #expect(html.contains("1000 nodes, 8000 GPUs, 8000 in use"))
        #expect(!html.contains("<form"), "a node's actions are on its own page, not a thousand times here")
    }

    @Test func tiles_inWords_groupRunsOfOneHolder() {
        var status = Self.status(nodes: 1, deployments: 1)
        status.nodes[0].gpusTotal = 10
        status.nodes[0].gpusOutOfService = [9]
        status.deployments[0].replicas.removeLast(5) // GPUs 3–7 free
        let view = FleetView(status: status, telemetry: nil, now: Date(), author: "console")
        #expect(view.nodes[0].gpuSummary == "node-0: GPUs 0–2 model-0, GPUs 3–8 free, GPU 9 out of service")
    }

    @Test func telemetry_perNode_andPerGPUFromDCGM() {
        var gpu = GPUHealth.DCGM.GPU(index: 2, uuid: "GPU-2")
        gpu.utilizationPercent = 87.4
        gpu.memoryUsedMiB = 62_464
        var telemetry = TelemetrySummary()
        telemetry.nodes["node-0"] = .init(gpuUtilization: 0.5, gpuMemoryUsedBytes: 3 * 1_073_741_824, gpus: 8, dcgm: [gpu])
        let view = FleetView(status: Self.status(nodes: 1, deployments: 1), telemetry: telemetry, now: Date(), author: "console")
        #expect(view.nodes[0].telemetry?.utilisation == "50 %")
        #expect(view.nodes[0].gpus[2].title == "GPU 2: model-0 replica 2, ready · 87 % · 61.0 GiB")
        #expect(view.nodes[0].gpus[3].title == "GPU 3: model-0 replica 3, ready")
    }

    @Test func text_fromTheFleet_isEscaped() {
        let view = FleetView(status: Self.status(nodes: 1, message: "<script>alert(1)</script>"), telemetry: nil, now: Date(), author: "a\"b")
        let html = Self.render("node", NodePage(name: "node-0", node: view.nodes[0], events: []))
        #expect(!html.contains("<script>alert"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(html.contains("value=\"a&quot;b\""))
    }

    @Test func deployments_andTheGatewaySplit() {
        var status = Self.status(nodes: 2, deployments: 2)
        status.gateways = [GatewayStatus(name: "front", listen: 8080, managed: true,
                                         members: [UpstreamMember(deployment: "model-0", replica: 0, endpoint: "a", weight: 90, share: 0.9, inService: true, reason: ""),
                                                   UpstreamMember(deployment: "model-1", replica: 0, endpoint: "b", weight: 10, share: 0.1, inService: true, reason: ""),
                                                   UpstreamMember(deployment: "model-1", replica: 1, endpoint: "c", weight: 10, share: 0, inService: false, reason: "not ready")],
                                         configHash: nil, configPath: "", nginxPID: nil, lastReload: nil, lastReloadMilliseconds: nil, conditions: [])]
        let html = Self.render("deployments", DeploymentsView(status: status))
        #expect(html.contains("data-deployment=\"model-0\"") && html.contains("data-field=\"ready\">8/8<"))
        #expect(html.contains("style=\"width: 90.0%\">model-0<") && html.contains("style=\"width: 10.0%\">model-1<"), "\(html)")
        #expect(html.contains("model-0 90 %, model-1 10 %"))
    }

    @Test func promotions_showTheirStepsAgainstTheDeadline() {
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        var p = Promotion(failedNode: "gpu-a1", standby: "gpu-s1", state: .running, reason: "", replicas: ["chat/0"], detectedAt: t0,
                          deadline: t0.addingTimeInterval(600))
        p.scheduledAt = t0.addingTimeInterval(2)
        p.startedAt = t0.addingTimeInterval(5)
        let html = Self.render("events", EventsView(promotions: [p], events: [], now: t0.addingTimeInterval(75)))
        #expect(html.contains("<li class=\"done\">scheduled +2 s</li>") && html.contains("<li class=\"done\">started +5 s</li>"), "\(html)")
        #expect(html.contains("<li class=\"\">ready</li>"))
        #expect(html.contains("1 min 15 s of 10 min so far"))
    }

    /// An exporter's odd reading (NaN, infinite, beyond any integer) shows as "?" and never
    /// stops the page, nor the controller serving it.
    @Test func telemetry_oddReadings_showAsUnknown() {
        var gpu = GPUHealth.DCGM.GPU(index: 1, uuid: "GPU-1")
        gpu.utilizationPercent = .infinity
        var telemetry = TelemetrySummary()
        telemetry.nodes["node-0"] = .init(gpuUtilization: .nan, gpuMemoryUsedBytes: 1e300, gpus: 8, dcgm: [gpu])
        let view = FleetView(status: Self.status(nodes: 1, deployments: 1), telemetry: telemetry, now: Date(), author: "console")
        #expect(view.nodes[0].telemetry?.utilisation == "?")
        #expect(view.nodes[0].telemetry?.memory == "?")
        #expect(view.nodes[0].gpus[1].title == "GPU 1: model-0 replica 1, ready")
        #expect(FleetView.whole(-0.4) == 0 && FleetView.whole(-Double.infinity) == nil)
    }

    /// A time typed into the "what was desired at" form arrives as `2026-12-06+09%3A00`: the
    /// `+` is a space. A query that is no form is a 400, not a 500.
    @Test func queries_decodeAsFormsDo() throws {
        let fields = try WebConsole.fields("time=2026-12-06+09%3A00&revision=3")
        #expect(fields == ["time": "2026-12-06 09:00", "revision": "3"])
        #expect(UTCTime.parse(fields["time"] ?? "") == Date(timeIntervalSince1970: 1_796_547_600))
        let error = #expect(throws: HTTPError.self) { try WebConsole.fields("a=1&a=2") }
        #expect(error?.status == .badRequest)
        #expect(WebConsole.status(of: StoreError(.notFound, path: "p", detail: "no snapshot")) == .notFound)
        #expect(WebConsole.status(of: StoreError(.corrupt, path: "p", detail: "checksum")) == .internalServerError)
    }

    @Test func signIn_returnsOnlyToPathsOfThisSite() {
        #expect(WebConsole.safeNext("/history?x=1") == "/history?x=1")
        for bad in ["//evil.example/", "https://evil.example/", "/\\evil.example", "history", "/\t/evil.example", "/ /evil.example", "/\n/x"] {
            #expect(WebConsole.safeNext(bad) == "/", "\(bad)")
        }
    }

    @Test func sessionCookie_holdsNoToken_andExpiresOnTheServer() {
        let token = "0123456789abcdef0123"
        let issued = Date(timeIntervalSince1970: 1_800_000_000)
        let value = ConsoleSession.value(token: token, issued: issued)
        #expect(!value.contains(token) && value.hasPrefix("1800000000."))
        #expect(ConsoleSession.isValid(value, token: token, now: issued.addingTimeInterval(3600)))
        #expect(!ConsoleSession.isValid(value, token: token, now: issued.addingTimeInterval(13 * 3600)), "older than 12 hours")
        #expect(!ConsoleSession.isValid(value, token: token, now: issued.addingTimeInterval(-3600)), "issued in the future")
        #expect(!ConsoleSession.isValid(value, token: token + "x", now: issued), "another token")
        #expect(!ConsoleSession.isValid("1800003600." + value.split(separator: ".")[1], token: token, now: issued), "a later time on the old MAC")
        #expect(ConsoleSession.isBearer("Bearer " + token, token: token) && !ConsoleSession.isBearer("Bearer nope", token: token))
        #expect(!ConsoleSession.isBearer("Bearer " + token, token: nil))
        #expect(ConsoleSession.isBearer("bearer " + token, token: token), "the scheme in any case")
        #expect(!ConsoleSession.isBearer("Basic " + token, token: token) && !ConsoleSession.isBearer(token, token: token))
    }

    @Test func times_inTheFormsTheConsoleAccepts() {
        let expected = Date(timeIntervalSince1970: 1_796_547_600) // 2026-12-06 09:00:00 UTC
        for text in ["2026-12-06T09:00:00Z", "2026-12-06 09:00", "2026-12-06T09:00", " 2026-12-06 09:00:00 "] {
            #expect(UTCTime.parse(text) == expected, "\(text)")
        }
        #expect(UTCTime.parse("yesterday") == nil)
    }
}

/// The stylesheet's colours, read from the stylesheet itself, against WCAG 2's contrast ratio.
@Suite("web console contrast")
struct ConsoleContrastTests {
    /// `#rrggbb` → relative luminance.
    static func luminance(_ hex: String) -> Double {
        let v = Int(hex.dropFirst(), radix: 16)!
        let channels = [(v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF].map { c -> Double in
            let s = Double(c) / 255
            return s <= 0.03928 ? s / 12.92 : pow((s + 0.055) / 1.055, 2.4)
        }
        return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]
    }

    static func ratio(_ a: String, _ b: String) -> Double {
        let (x, y) = (luminance(a), luminance(b))
        return (max(x, y) + 0.05) / (min(x, y) + 0.05)
    }

    /// The colour a rule or custom property sets, as written in the stylesheet.
    static func colour(_ pattern: String) -> String? {
        guard let range = ConsoleAssets.css.range(of: pattern + #"\s*#[0-9a-fA-F]{6}"#, options: .regularExpression) else { return nil }
        return String(ConsoleAssets.css[range].suffix(7))
    }

    @Test func text_andTiles_meetAA() throws {
        let white = "#ffffff"
        let bg = try #require(Self.colour("--bg:")), card = try #require(Self.colour("--card:"))
        for name in ["--fg:", "--muted:", "--accent:", "--ok:", "--warn:", "--bad:"] {
            let fg = try #require(Self.colour(name), "\(name)")
            #expect(Self.ratio(fg, bg) >= 4.5 && Self.ratio(fg, card) >= 4.5, "\(name) \(fg): \(Self.ratio(fg, bg))")
        }
        // Deployments' tiles carry their GPU index in white.
        for d in 0..<8 {
            let tile = try #require(Self.colour(#"\.d\#(d) \{ background:"#), "d\(d)")
            #expect(Self.ratio(tile, white) >= 4.5, "d\(d) \(tile): \(Self.ratio(tile, white))")
        }
        let header = try #require(Self.colour(#"header \{ background:"#))
        #expect(Self.ratio(header, white) >= 4.5)
        let free = try #require(Self.colour(#"\.tile\.free \{ background:"#)), freeText = try #require(Self.colour(#"\.tile\.free \{ background: #[0-9a-f]{6}; color:"#))
        #expect(Self.ratio(free, freeText) >= 4.5, "free tiles: \(Self.ratio(free, freeText))")
    }
}
