import GRDB

/// What went wrong with the state database, and what to do about it.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// The file exists but is not a SQLite database, or is another program's database.
        case notABerthDatabase
        /// SQLite reports the file damaged (truncated, overwritten).
        case corrupt
        /// Written by a newer Berth: migrations this build does not know.
        case newerSchema
        /// The file or its folder cannot be written.
        case readOnly
        /// Nothing stored where a read was asked for.
        case notFound
        /// A `--state` that cannot name a state: a malformed PostgreSQL URL, a password written in
        /// it, a password file others can read.
        case invalidLocation
        /// The database server cannot be reached or refused the login.
        case unreachable
        /// Any other SQLite failure.
        case database
    }

    public var code: Code
    public var path: String
    /// What failed, including SQLite's own message.
    public var detail: String
    /// What to do about it.
    public var hint: String?

    public init(_ code: Code, path: String, detail: String, hint: String? = nil) {
        self.code = code
        self.path = path
        self.detail = detail
        self.hint = hint
    }

    public var description: String {
        var text = "state \(path): \(detail)"
        if let hint { text += "\n  hint: \(hint)" }
        return text
    }

    /// Classifies a GRDB error raised while `doing` something to the database at `path`.
    static func wrap(_ error: any Error, path: String, doing: String) -> any Error {
        if var known = error as? StoreError {
            if known.path.isEmpty { known.path = path }
            return known
        }
        guard let db = error as? DatabaseError else { return error }
        let sqlite = "SQLite error \(db.extendedResultCode.rawValue): \(db.message ?? "\(db.resultCode)") - while \(doing)"
        switch db.resultCode {
        case .SQLITE_NOTADB:
            return StoreError(.notABerthDatabase, path: path, detail: "not a SQLite database (\(sqlite))",
                              hint: "point --state (or BERTH_STATE) at a Berth state file, or at a path that does not exist yet to start a new one; the file was left untouched")
        case .SQLITE_CORRUPT:
            return StoreError(.corrupt, path: path, detail: "the database is damaged (\(sqlite))",
                              hint: "restore it from a snapshot; the file was left untouched")
        case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_AUTH:
            return StoreError(.readOnly, path: path, detail: "cannot write the state (\(sqlite))",
                              hint: "make the state file and its folder writable by this user, or choose another --state path")
        default:
            return StoreError(.database, path: path, detail: sqlite)
        }
    }
}

/// A named object, revision or snapshot that does not exist; the message says which, and where.
public struct NotFound: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
