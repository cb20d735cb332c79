import BerthControl
import BerthModel
import BerthStore
import Foundation
import Hummingbird
import ServiceLifecycle

// What the console changes (rollback, node holds), its live stream, and its sign-in.

extension WebConsole {
    /// The rollback target a page or form names: `revision=N`, `snapshot=ID` or `time=T`.
    static func target(_ fields: [String: String]) -> (RollbackPlan.Target, [(name: String, value: String)])? {
        if let n = fields["revision"].flatMap(Int64.init) { return (.revision(n), [("revision", "\(n)")]) }
        if let id = fields["snapshot"], !id.isEmpty { return (.snapshot(id), [("snapshot", id)]) }
        if let text = fields["time"], let time = UTCTime.parse(text) { return (.time(time), [("time", text)]) }
        return nil
    }

    struct RollbackView {
        struct Field {
            var name: String
            var value: String
        }
        var label: String
        var lines: [DiffView.Line]
        var problems: [String]
        var hasProblems: Bool
        var fields: [Field]
        var author: String
    }

    /// The dry run: the diff and the feasibility checks, and a form that confirms.
    func rollbackDryRun(_ request: Request) async throws -> Response {
        var fields = try Self.query(request)
        fields["author"] = Self.rememberedAuthor(request)
        return try await rollbackPage(fields, error: nil)
    }

    func rollbackPage(_ fields: [String: String], error: String?, status: HTTPResponse.Status = .ok) async throws -> Response {
        switch try resolve(fields) {
        case .failure(let refusal): return try await message("Rollback", error: refusal.text, status: refusal.status)
        case .success(let resolved):
            return try await rollbackPage(resolved.plan, current: resolved.current, problems: nil, fields: fields, error: error, status: status)
        }
    }

    /// The dry run of `plan`: its diff from `current` and its checks (`problems`, when the caller
    /// has already made them).
    func rollbackPage(_ plan: RollbackPlan, current: [Resource], problems: [String]?, fields: [String: String], error: String?,
                      status: HTTPResponse.Status = .ok) async throws -> Response {
        let diff = StateDiff.unified(old: current, new: plan.resources, oldLabel: "now", newLabel: plan.label)
        if diff.isEmpty {
            return try await message("Nothing to roll back: the desired state already equals \(plan.label)")
        }
        let problems = if let problems { problems } else { await plan.problems(store: store, checkImages: true) }
        let hidden = Self.target(fields)?.1 ?? []
        let view = RollbackView(label: plan.label, lines: DiffView.lines(diff), problems: problems, hasProblems: !problems.isEmpty,
                                fields: hidden.map { RollbackView.Field(name: $0.name, value: $0.value) }, author: fields["author"] ?? "console")
        return try await page("rollback", title: "Roll back to \(plan.label)", view, error: error, status: status)
    }

    /// Why the fields name no rollback: what to say, with which status.
    struct Refusal: Error {
        var text: String
        var status: HTTPResponse.Status
    }

    /// The rollback the fields name, against the desired state now.
    func resolve(_ fields: [String: String]) throws -> Result<(plan: RollbackPlan, current: [Resource]), Refusal> {
        guard let (target, _) = Self.target(fields) else {
            return .failure(Refusal(text: "name what to roll back to: revision=N, snapshot=ID or time=T", status: .badRequest))
        }
        let current = try store.objects().map(\.resource)
        do {
            return .success((try RollbackPlan.resolve(target, store: store, current: current), current))
        } catch {
            return .failure(Refusal(text: "\(error)", status: WebConsole.status(of: error)))
        }
    }

    /// The confirmed rollback: checked again (the state may have moved since the dry run), then
    /// stored as a revision of origin `rollback` with its author.
    func rollback(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        var request = request
        guard sameOrigin(request) else { return Self.forbidden() }
        let fields = try await Self.form(&request)
        guard let author = Self.author(fields) else { return try await rollbackPage(fields, error: "say who rolls back (1–64 characters)", status: .badRequest) }
        let (plan, current): (RollbackPlan, [Resource])
        switch try resolve(fields) {
        case .failure(let refusal): return try await message("Rollback", error: refusal.text, status: refusal.status)
        case .success(let resolved): (plan, current) = resolved
        }
        let problems = await plan.problems(store: store, checkImages: true)
        if !problems.isEmpty && fields["force"] != "1" {
            return try await rollbackPage(plan, current: current, problems: problems, fields: fields,
                                          error: "rollback refused: \(problems.count) check(s) failed; fix them, or tick the box to store it anyway",
                                          status: .conflict)
        }
        let message = fields["message"].flatMap { $0.isEmpty ? nil : $0 }
        let result = try store.apply(plan.input, options: plan.options(author: author, message: message))
        return Self.remembering(author, Self.redirect(result.revision.map { "/history?stored=\($0)" } ?? "/history"))
    }

    /// Cordon, uncordon, drain or promote a node, recorded as `berth node` records it.
    func nodeAction(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        var request = request
        guard sameOrigin(request) else { return Self.forbidden() }
        let name = context.parameters.get("name") ?? ""
        let fields = try await Self.form(&request)
        guard let change = fields["action"].flatMap(NodeHoldChange.init(rawValue:)) else {
            return Self.plain(.badRequest, "action must be one of: \(NodeHoldChange.allCases.map(\.rawValue).joined(separator: ", "))\n")
        }
        guard let author = Self.author(fields) else { return Self.plain(.badRequest, "say who asks (1–64 characters)\n") }
        guard try store.object(ObjectKey(.node, name)) != nil else { return Self.plain(.notFound, "no node \"\(name)\"\n") }
        try store.change(node: name, change, author: author, reason: fields["reason"] ?? "")
        return Self.remembering(author, Self.redirect("/nodes/\(name)?done=\(change.rawValue)"))
    }

    // MARK: The live stream

    /// Server-sent events: each event the controller stores (`event: event`, with its id, so a
    /// browser that reconnects says where it was), and the deployments' counts whenever they
    /// change (`event: deployments`). Starts after `after` (the newest event the page showed, or
    /// the `Last-Event-ID` of a reconnect), else from now; a comment every 5 s notices a browser
    /// that went away. Ends with the controller's graceful shutdown, which it never holds up.
    func stream(after: Int64?) -> Response {
        guard streams.value < Self.maxStreams else {
            return Self.plain(.serviceUnavailable, "too many open event streams (\(Self.maxStreams)); close a console tab\n")
        }
        let encoder = JSONEncoder()
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
            body: ResponseBody { writer in
                // Counted here, where it is certain to be given back: the body may never run.
                let admitted = streams.withLock { n -> Bool in
                    guard n < Self.maxStreams else { return false }
                    n += 1
                    return true
                }
                guard admitted else {
                    try await writer.write(ByteBuffer(string: "retry: 30000\n: too many open event streams\n\n"))
                    return try await writer.finish(nil)
                }
                defer { streams.withLock { $0 -= 1 } }
                var last = after ?? feed.events().first?.id ?? 0
                var shown: [DeploymentsView.Live] = []
                var quiet = 0
                try await writer.write(ByteBuffer(string: ": berth console\n\n"))
                do {
                    while !Task.isCancelled && !Task.isShuttingDownGracefully {
                        var out = ""
                        for e in feed.events().filter({ ($0.id ?? 0) > last }).reversed() {
                            last = max(last, e.id ?? 0)
                            out += "id: \(e.id ?? 0)\nevent: event\ndata: " + String(decoding: try encoder.encode(EventsView.row(e)), as: UTF8.self) + "\n\n"
                        }
                        let live = DeploymentsView.live(await feed.status())
                        if live != shown {
                            shown = live
                            out += "event: deployments\ndata: " + String(decoding: try encoder.encode(live), as: UTF8.self) + "\n\n"
                        }
                        quiet = out.isEmpty ? quiet + 1 : 0
                        if quiet >= 5 { out = ": still here\n\n"; quiet = 0 }
                        if !out.isEmpty { try await writer.write(ByteBuffer(string: out)) }
                        try await Task.sleep(for: .seconds(1))
                    }
                } catch is CancellationError {}
                try await writer.finish(nil)
            })
    }

    /// Where a stream starts: a reconnect's `Last-Event-ID`, else the page's `?after=`.
    static func lastSeen(_ request: Request) -> Int64? {
        request.headers[HTTPFields.Element.Name("Last-Event-ID")!].flatMap { Int64($0) } ?? (try? query(request))?["after"].flatMap { Int64($0) }
    }

    // MARK: Sign-in

    func loginPage(next: String, error: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        struct Login {
            var next: String
        }
        return try await page("login", title: "Sign in", Login(next: Self.safeNext(next)), error: error, status: status)
    }

    /// Checks the token and sets the session cookie: HttpOnly (no script reads it), SameSite
    /// Strict (no other site's page sends it), valid 12 hours.
    func login(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        var request = request
        let fields = try await Self.form(&request)
        let next = Self.safeNext(fields["next"] ?? "/")
        guard let token else { return Self.redirect(next) }
        guard let presented = fields["token"], ConsoleSession.matches(presented, token: token) else {
            return try await loginPage(next: next, error: "that is not this controller's token", status: .forbidden)
        }
        var response = Self.redirect(next)
        response.setCookie(Cookie(name: ConsoleSession.cookie, value: ConsoleSession.value(token: token), maxAge: Int(ConsoleSession.lifetime),
                                  path: "/", httpOnly: true, sameSite: .strict))
        return response
    }

    /// Only a path of this site: never `//host`, a URL elsewhere, or a path that a browser would
    /// read as one once it drops the tabs, spaces or backslashes in it (`/\t/evil.example`).
    static func safeNext(_ next: String) -> String {
        let plain = next.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value != 0x7F && $0 != "\\" }
        return plain && next.hasPrefix("/") && !next.hasPrefix("//") ? next : "/"
    }

    // MARK: Helpers

    /// A POST from this site's pages: its Origin (or, lacking one, Referer) names this host.
    /// Requests with the bearer token itself come from programs, which browsers cannot forge.
    func sameOrigin(_ request: Request) -> Bool {
        if ConsoleSession.isBearer(request.headers[.authorization], token: token) { return true }
        guard let host = request.head.authority,
              let origin = request.headers[.origin] ?? request.headers[.referer] else { return false }
        let parts = origin.split(separator: "/", omittingEmptySubsequences: true)
        return parts.count >= 2 && parts[0].hasPrefix("http") && parts[1] == host
    }

    /// A POSTed form's fields; a body that is no form (a repeated field, a bad `%`) is a 400.
    static func form(_ request: inout Request) async throws -> [String: String] {
        let body = try await request.collectBody(upTo: 64 * 1024)
        return try fields(String(buffer: body))
    }

    /// The query's fields, as a form sent with GET encodes them: `+` is a space (the browser's
    /// `2026-12-06+09%3A00`), which the URI's own query parameters leave as it is. Every page
    /// reads its query through this.
    static func query(_ request: Request) throws -> [String: String] {
        try fields(request.uri.query ?? "")
    }

    static func fields(_ encoded: String) throws -> [String: String] {
        do {
            return try URLEncodedFormDecoder().decode([String: String].self, from: encoded)
        } catch {
            throw HTTPError(.badRequest, message: "not a form: \(error)")
        }
    }

    static let authorCookie = "berth_author"

    /// The author the last action from this browser named, offered again in the forms.
    static func rememberedAuthor(_ request: Request) -> String {
        request.cookies[authorCookie].flatMap { $0.value.removingPercentEncoding }.flatMap { author(["author": $0]) } ?? "console"
    }

    static func remembering(_ author: String, _ response: Response) -> Response {
        var response = response
        let value = author.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "console"
        response.setCookie(Cookie(name: authorCookie, value: value, maxAge: 365 * 86400, path: "/", httpOnly: true, sameSite: .strict))
        return response
    }

    static func author(_ fields: [String: String]) -> String? {
        guard let author = fields["author"]?.trimmingCharacters(in: .whitespaces), (1...64).contains(author.count) else { return nil }
        return author
    }

    static func forbidden() -> Response {
        plain(.forbidden, "refused: a console action must be sent from the console's own page (its Origin must be this host)\n")
    }

    static func plain(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
