import BerthControl
import BerthModel
import BerthRuntime
import BerthStore
import Foundation
import Hummingbird
import Mustache

/// The web console `berth controller` serves at `/`, beside its JSON API and under the same rule:
/// on loopback without a token; elsewhere a bearer token or the login form's session cookie
/// (`APIServer`'s middleware). Pages are rendered on the server from the controller's status and
/// the state; the only script follows `/events/stream` to keep them live.
///
/// Actions (rollback, cordon, uncordon, drain, promote) are POSTed forms, recorded with the author
/// the form names, as the CLI records its own. A POST must come from one of the console's own
/// pages (its `Origin` is this host), so another site cannot make a browser act.
public struct WebConsole: Sendable {
    let board: StatusBoard
    let store: StateStore
    /// The token a sign-in must present; nil on loopback without one.
    let token: String?
    let streams = Locked(0)
    static let maxStreams = 32
    /// What the open event streams show, read from the store at most once a second for all of them.
    let feed: ConsoleFeed

    public init(board: StatusBoard, statePath: String, token: String?) throws {
        self.board = board
        store = try StateStore.open(path: statePath, create: false)
        self.token = token
        feed = ConsoleFeed(store: store, board: board)
    }

    public func install(on router: Router<BasicRequestContext>) {
        // A page whose work fails (the state unreadable, a revision gone) says so in the page.
        let pages = router.group().add(middleware: ErrorPage(console: self))
        pages.get("/") { request, _ in try await self.fleet(author: Self.rememberedAuthor(request)) }
        pages.get("/deployments") { _, _ in try await self.page("deployments", title: "Deployments", DeploymentsView(status: await self.status())) }
        pages.get("/history") { request, _ in try await self.history(request) }
        pages.get("/history/diff") { request, _ in try await self.diff(request) }
        pages.get("/history/at") { request, _ in try await self.at(request) }
        pages.get("/rollback") { request, _ in try await self.rollbackDryRun(request) }
        pages.post("/rollback") { request, context in try await self.rollback(request, context) }
        pages.get("/nodes/:name") { request, context in
            try await self.node(context.parameters.get("name") ?? "", author: Self.rememberedAuthor(request),
                                done: try Self.query(request)["done"])
        }
        pages.post("/nodes/:name") { request, context in try await self.nodeAction(request, context) }
        pages.get("/events") { _, _ in try await self.events() }
        pages.get("/events/stream") { request, _ in self.stream(after: Self.lastSeen(request)) }
        pages.get("/login") { request, _ in try await self.loginPage(next: try Self.query(request)["next"] ?? "/") }
        pages.post("/login") { request, context in try await self.login(request, context) }
        router.get("/assets/console.css") { _, _ in Self.asset(ConsoleAssets.css, type: "text/css; charset=utf-8") }
        router.get("/assets/console.js") { _, _ in Self.asset(ConsoleAssets.js, type: "text/javascript; charset=utf-8") }
    }

    /// Renders an error thrown by a page as a page: 404 for what is not there, 500 otherwise;
    /// Hummingbird's own errors (a form over 64 KiB) keep their status.
    struct ErrorPage: RouterMiddleware {
        typealias Context = BasicRequestContext
        let console: WebConsole

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            do {
                return try await next(request, context)
            } catch let error as any HTTPResponseError {
                throw error
            } catch {
                let status = WebConsole.status(of: error)
                return try await console.message(status == .notFound ? "Not found" : "That did not work", error: "\(error)", status: status)
            }
        }
    }

    /// 404 for what is not there (a revision, a snapshot), 500 for anything else (a store that
    /// could not be read, a snapshot that fails its check).
    static func status(of error: any Error) -> HTTPResponse.Status {
        if error is NotFound { return .notFound }
        if let error = error as? StoreError, error.code == .notFound { return .notFound }
        return .internalServerError
    }

    // MARK: Pages

    /// The leader's status from its memory; a standby shows the status its leader last stored.
    func status() async -> FleetStatus { await feed.status() }

    /// A page that only says something (an error, nothing to do).
    func message(_ heading: String, error: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        struct Message {
            var heading: String
        }
        return try await page("message", title: heading, Message(heading: heading), error: error, status: status)
    }

    func fleet(author: String) async throws -> Response {
        let view = FleetView(status: await status(), telemetry: await board.telemetry, now: Date(), author: author)
        return try await page("fleet", title: "Fleet", view)
    }

    /// One node: its row, its actions and its recent events.
    func node(_ name: String, author: String, done: String?) async throws -> Response {
        let fleet = FleetView(status: await status(), telemetry: await board.telemetry, now: Date(), author: author, only: name)
        guard let row = fleet.nodes.first else {
            return try await page("node", title: "Node \(name)", NodePage(name: name, node: nil, events: []),
                                  error: "no node \"\(name)\" in the controller's status", status: .notFound)
        }
        let events = try store.events(kind: "node", name: name, limit: 30).map(EventsView.row)
        let flash = done.flatMap(NodeHoldChange.init(rawValue:)).map { "\($0.rawValue): stored; the controller acts on it at its next pass" }
        return try await page("node", title: "Node \(name)", NodePage(name: name, node: row, events: events), flash: flash)
    }

    func history(_ request: Request) async throws -> Response {
        let revisions = try store.history(limit: 100)
        var snapshots: [SnapshotRecord] = []
        var note = "No snapshot yet: the controller takes one every hour."
        do { snapshots = try SnapshotStore(statePath: store.path).list() } catch { note = "Snapshots could not be read: \(error)" }
        let flash = try Self.query(request)["stored"].flatMap { Int64($0) }.map { "revision \($0) stored" }
        return try await page("history", title: "History", HistoryView(revisions: revisions, snapshots: snapshots, snapshotsNote: note), flash: flash)
    }

    func diff(_ request: Request) async throws -> Response {
        let q = try Self.query(request)
        guard let from = q["from"].flatMap(Int64.init), let to = q["to"].flatMap(Int64.init), from >= 0, to > 0 else {
            return try await page("diff", title: "Diff", DiffView(heading: "Diff", text: nil), error: "give two revision numbers, e.g. from=3&to=5", status: .badRequest)
        }
        for n in [from, to] where try n > 0 && store.revision(n) == nil {
            return try await page("diff", title: "Diff", DiffView(heading: "Diff", text: nil), error: "revision \(n) does not exist", status: .notFound)
        }
        let old = from > 0 ? try store.state(at: from) : []
        let text = StateDiff.unified(old: old, new: try store.state(at: to), oldLabel: "revision \(from)", newLabel: "revision \(to)")
        return try await page("diff", title: "Diff \(from)→\(to)", DiffView(heading: "Revision \(from) → revision \(to)", text: text.isEmpty ? nil : text))
    }

    func at(_ request: Request) async throws -> Response {
        struct At {
            struct Object {
                var key: String
                var summary: String
            }
            var heading: String
            var revision: Int64?
            var objects: [Object]
        }
        let text = try Self.query(request)["time"] ?? ""
        guard let time = UTCTime.parse(text) else {
            return try await page("at", title: "At a time", At(heading: "At a time", objects: []),
                                  error: "\"\(text)\" is not a time: give e.g. 2026-12-06T09:00:00Z or 2026-12-06 09:00 (UTC)", status: .badRequest)
        }
        guard let revision = try store.revision(at: time), let id = revision.id else {
            return try await page("at", title: "At a time", At(heading: "Nothing was desired at \(UTCTime.text(time))", objects: []))
        }
        let objects = try store.state(at: id).map { At.Object(key: "\($0.key)", summary: Self.summary($0)) }
        return try await page("at", title: "At \(UTCTime.text(time))",
                              At(heading: "Desired at \(UTCTime.text(time)): revision \(id), by \(revision.author)", revision: id, objects: objects))
    }

    static func summary(_ r: Resource) -> String {
        if let d = r.deployment { return "model \(d.model) \(d.version), \(d.replicas) replica(s) × \(d.gpusPerReplica.map { "\($0) GPU(s)" } ?? "GPUs from the model's size"), weight \(d.weight)" }
        if let n = r.node { return "\(n.role.rawValue), \(n.gpus.count) GPU(s)" + (n.gpus.model.map { " \($0)" } ?? "") }
        if let m = r.model { return "\(m.versions.count) version(s)" }
        return ""
    }

    func events() async throws -> Response {
        let view = EventsView(promotions: await status().controller?.promotions ?? [], events: try store.events(limit: 100), now: Date())
        return try await page("events", title: "Events", view)
    }

    // MARK: Rendering

    struct Layout {
        struct Nav {
            var href: String
            var label: String
            var current: Bool
        }
        var title: String
        var nav: [Nav]
        var leadership: String
        var flash: String?
        var error: String?
        var body: String
        var live: Bool
    }

    static let sections = [("/", "Fleet", "fleet"), ("/deployments", "Deployments", "deployments"), ("/history", "History", "history"),
                           ("/events", "Events", "events")]

    func page(_ template: String, title: String, _ model: Any, flash: String? = nil, error: String? = nil,
              status: HTTPResponse.Status = .ok) async throws -> Response {
        let body = ConsoleTemplates.library.render(model, withTemplate: template) ?? ""
        let current = Self.sections.first { $0.2 == template }?.0
            ?? (["diff", "at", "rollback"].contains(template) ? "/history" : template == "node" ? "/" : "")
        // The sign-in page is open to anyone who reaches the address: it says nothing of the fleet.
        let leadership = template == "login" ? ""
            : await board.leader ? "leading" : "standing by (lease held by \(await board.leaseHolder ?? "nobody"))"
        let layout = Layout(title: title, nav: Self.sections.map { Layout.Nav(href: $0.0, label: $0.1, current: $0.0 == current) },
                            leadership: leadership, flash: flash, error: error, body: body, live: template != "login")
        let html = ConsoleTemplates.library.render(layout, withTemplate: "layout") ?? ""
        return Response(status: status, headers: Self.pageHeaders, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// No other site may frame a page (a hidden frame would turn a click there into a confirmed
    /// rollback here), run a script in it, or post its forms elsewhere.
    static let pageHeaders: HTTPFields = [
        .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
        .contentSecurityPolicy: "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        HTTPFields.Element.Name("X-Frame-Options")!: "DENY", .xContentTypeOptions: "nosniff", HTTPFields.Element.Name("Referrer-Policy")!: "same-origin",
    ]

    static func asset(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type, .cacheControl: "max-age=300"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }
}
