import Foundation

/// A state on PostgreSQL: `postgres://USER@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require]`.
/// It never holds a password: one written in the URL is refused, and the password is read when
/// connecting, from a file given by reference or the PostgreSQL password file (`PGPASSFILE`, else
/// `~/.pgpass`), so it is never stored, printed or logged.
public struct PostgresLocation: Sendable, Hashable, CustomStringConvertible {
    public enum SSLMode: String, Sendable, CaseIterable {
        /// No TLS.
        case disable
        /// TLS when the server offers it.
        case prefer
        /// TLS or no connection.
        case require
    }

    public var user: String
    public var host: String
    public var port: Int
    public var database: String
    public var sslMode: SSLMode

    public init(user: String, host: String, port: Int = 5432, database: String, sslMode: SSLMode = .prefer) {
        self.user = user
        self.host = host
        self.port = port
        self.database = database
        self.sslMode = sslMode
    }

    /// Whether `text` names a PostgreSQL state rather than a SQLite file.
    public static func isURL(_ text: String) -> Bool {
        let lower = text.lowercased()
        return lower.hasPrefix("postgres://") || lower.hasPrefix("postgresql://")
    }

    /// The URL as it may be shown: no password ever, so it can go to logs and errors as it is.
    public var description: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(Self.escape(user))@\(hostPart):\(port)/\(Self.escape(database))?sslmode=\(sslMode.rawValue)"
    }

    /// Reads a `postgres://` URL. Refused, with what would be right: a password in the URL (the
    /// error does not repeat it), a missing user, host or database, a port out of range, and any
    /// query parameter but `sslmode`.
    public static func parse(_ text: String) throws -> PostgresLocation {
        func refuse(_ detail: String, _ hint: String) -> StoreError {
            StoreError(.invalidLocation, path: redacted(text), detail: detail, hint: hint)
        }
        let form = "postgres://USER@HOST:PORT/DATABASE?sslmode=prefer"
        guard isURL(text), let components = URLComponents(string: text) else {
            throw refuse("is not a PostgreSQL URL", "write it as \(form)")
        }
        if components.password != nil {
            throw refuse("has a password written in it, which would end up in shell history, process lists and logs",
                         "remove it from the URL and give it by reference: a line HOST:PORT:DATABASE:USER:PASSWORD in the password file (PGPASSFILE, else ~/.pgpass, mode 600)")
        }
        guard let user = components.user, !user.isEmpty else { throw refuse("names no user", "write it as \(form)") }
        guard let host = components.host, !host.isEmpty else { throw refuse("names no host", "write it as \(form)") }
        let port = components.port ?? 5432
        guard (1...65_535).contains(port) else { throw refuse("port \(port) is out of range", "a port is 1–65535 (PostgreSQL's is 5432)") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else { throw refuse("names no database", "write it as \(form)") }
        var sslMode = SSLMode.prefer
        for item in components.queryItems ?? [] {
            if item.name == "password" {
                throw refuse("has a password in its parameters, which would end up in shell history, process lists and logs",
                             "remove it from the URL and give it by reference: a line HOST:PORT:DATABASE:USER:PASSWORD in the password file (PGPASSFILE, else ~/.pgpass, mode 600)")
            }
            guard item.name == "sslmode" else {
                throw refuse("has the parameter \"\(item.name)\", which Berth does not use", "only sslmode is read (disable, prefer or require)")
            }
            guard let mode = item.value.flatMap(SSLMode.init(rawValue:)) else {
                throw refuse("sslmode \"\(item.value ?? "")\" is not one Berth knows",
                             "sslmode is one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            sslMode = mode
        }
        // URLComponents has decoded user, host and path already.
        return PostgresLocation(user: user, host: host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")),
                                port: port, database: database, sslMode: sslMode)
    }

    /// The URL as it may be shown, for messages about a URL as given: a password becomes `***`,
    /// parameters `?…` (one may hold a password), and a URL that does not parse shows no more
    /// than its scheme (where a password would be cannot be told).
    public static func redacted(_ text: String) -> String {
        guard let c = URLComponents(string: text), let scheme = c.scheme else {
            return (text.range(of: "://").map { String(text[..<$0.upperBound]) } ?? "") + "…"
        }
        var out = scheme + "://"
        if let user = c.percentEncodedUser { out += user + (c.percentEncodedPassword != nil ? ":***" : "") + "@" }
        out += c.percentEncodedHost ?? ""
        if let port = c.port { out += ":\(port)" }
        out += c.percentEncodedPath
        if c.percentEncodedQuery != nil || c.percentEncodedFragment != nil { out += "?…" }
        return out
    }

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed.subtracting(CharacterSet(charactersIn: ":@/?#"))) ?? text
    }

    /// The password, read now: the whole of `file` (one trailing newline dropped) when given,
    /// else the first matching line of the password file (`PGPASSFILE`, else `~/.pgpass`), else
    /// nil (the server may not ask for one). A password file others can read is refused, as
    /// libpq refuses it.
    public func password(file: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String? {
        if let file {
            let text = try Self.readPrivate(file, what: "the password file")
            return text.hasSuffix("\n") ? String(text.dropLast()) : text
        }
        let passfile = environment["PGPASSFILE"] ?? environment["HOME"].map { $0 + "/.pgpass" }
        guard let passfile, FileManager.default.fileExists(atPath: passfile) else { return nil }
        return Self.match(in: try Self.readPrivate(passfile, what: "the password file"), host: host, port: port, database: database, user: user)
    }

    static func readPrivate(_ path: String, what: String) throws -> String {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw StoreError(.invalidLocation, path: path, detail: "\(what) cannot be read", hint: "give a readable file holding the password")
        }
        // Checked before a byte is read.
        if info.st_mode & 0o077 != 0 {
            throw StoreError(.invalidLocation, path: path, detail: "\(what) can be read by others (mode \(String(info.st_mode & 0o777, radix: 8)))",
                             hint: "chmod 600 \(path)")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw StoreError(.invalidLocation, path: path, detail: "\(what) cannot be read", hint: "give a readable file holding the password")
        }
        return text
    }

    /// The password of the first line of a PostgreSQL password file that matches: fields
    /// `HOST:PORT:DATABASE:USER:PASSWORD`, `*` matching anything, `\:` and `\\` escaped.
    static func match(in text: String, host: String, port: Int, database: String, user: String) -> String? {
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            var fields: [String] = [""]
            var escaped = false
            for ch in line {
                if escaped { fields[fields.count - 1].append(ch); escaped = false }
                else if ch == "\\" { escaped = true }
                else if ch == ":" && fields.count < 5 { fields.append("") }
                else { fields[fields.count - 1].append(ch) }
            }
            guard fields.count == 5 else { continue }
            let wanted = [host, String(port), database, user]
            if zip(fields.prefix(4), wanted).allSatisfy({ $0 == "*" || $0 == $1 }) { return fields[4] }
        }
        return nil
    }
}
