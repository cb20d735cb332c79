import Foundation
import GRDB

/// The store's seam between what it keeps and where: every query of `StateStore` is written once,
/// in the SQL both SQLite and PostgreSQL read (`?` placeholders, unquoted identifiers, `ON CONFLICT`
/// upserts, `RETURNING`), and runs in a session of either backend. Results are read by position,
/// never by column name (PostgreSQL folds unquoted names to lower case).
protocol SQLSession {
    var dialect: SQLDialect { get }
    /// Runs a statement; returns how many rows it changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int
    /// Runs a query and returns its rows.
    func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow]
}

extension SQLSession {
    @discardableResult
    func execute(_ sql: String) throws -> Int { try execute(sql, []) }
    func rows(_ sql: String) throws -> [SQLRow] { try rows(sql, []) }
    func row(_ sql: String, _ arguments: [SQLValue] = []) throws -> SQLRow? { try rows(sql, arguments).first }
}

enum SQLDialect: Sendable {
    case sqlite, postgres
}

/// A value bound to a statement or read from a row. Dates and booleans are typed here; each
/// backend stores them its own way (SQLite: GRDB's text dates and 0/1, PostgreSQL: timestamptz
/// and boolean).
enum SQLValue: Sendable, Hashable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case bool(Bool)
    case date(Date)
}

extension SQLValue {
    init(_ value: String) { self = .text(value) }
    init(_ value: String?) { self = value.map(SQLValue.text) ?? .null }
    init(_ value: Int64) { self = .int(value) }
    init(_ value: Int64?) { self = value.map(SQLValue.int) ?? .null }
    init(_ value: Int) { self = .int(Int64(value)) }
    init(_ value: Bool) { self = .bool(value) }
    init(_ value: Date) { self = .date(value) }
    init(_ value: Date?) { self = value.map(SQLValue.date) ?? .null }
}

/// One result row, read by position; a value of the wrong type is a `StoreError`, not a crash.
struct SQLRow: Sendable {
    var values: [SQLValue]

    func value(_ i: Int) throws -> SQLValue {
        guard values.indices.contains(i) else { throw mismatch(i, "a column") }
        return values[i]
    }

    func string(_ i: Int) throws -> String {
        guard case .text(let s) = try value(i) else { throw mismatch(i, "text") }
        return s
    }

    func optionalString(_ i: Int) throws -> String? {
        if case .null = try value(i) { return nil }
        return try string(i)
    }

    func int64(_ i: Int) throws -> Int64 {
        switch try value(i) {
        case .int(let n): return n
        case .bool(let b): return b ? 1 : 0
        default: throw mismatch(i, "an integer")
        }
    }

    func optionalInt64(_ i: Int) throws -> Int64? {
        if case .null = try value(i) { return nil }
        return try int64(i)
    }

    func int(_ i: Int) throws -> Int { Int(try int64(i)) }

    func bool(_ i: Int) throws -> Bool {
        switch try value(i) {
        case .bool(let b): return b
        case .int(let n): return n != 0
        default: throw mismatch(i, "a boolean")
        }
    }

    func date(_ i: Int) throws -> Date {
        switch try value(i) {
        case .date(let d): return d
        case .text(let s):
            // SQLite keeps dates as text, in GRDB's format.
            guard let d = Date.fromDatabaseValue(s.databaseValue) else { throw mismatch(i, "a date") }
            return d
        default: throw mismatch(i, "a date")
        }
    }

    func optionalDate(_ i: Int) throws -> Date? {
        if case .null = try value(i) { return nil }
        return try date(i)
    }

    func mismatch(_ i: Int, _ expected: String) -> StoreError {
        StoreError(.database, path: "", detail: "column \(i) of a stored row is not \(expected) (\(values.indices.contains(i) ? "\(values[i])" : "missing"))")
    }
}

/// A stored record: its table, its columns in order, how a row reads back and what it writes.
protocol SQLRecord {
    static var table: String { get }
    /// Column names in the order of `values` and of `init(row:)`.
    static var columns: [String] { get }
    init(row: SQLRow) throws
    var values: [SQLValue] { get }
}

extension SQLRecord {
    static var columnList: String { columns.joined(separator: ", ") }
    static var select: String { "SELECT \(columnList) FROM \(table)" }

    static func all(_ session: any SQLSession, _ tail: String = "", _ arguments: [SQLValue] = []) throws -> [Self] {
        try session.rows(select + (tail.isEmpty ? "" : " " + tail), arguments).map(Self.init(row:))
    }

    static func one(_ session: any SQLSession, _ tail: String, _ arguments: [SQLValue]) throws -> Self? {
        try all(session, tail + " LIMIT 1", arguments).first
    }

    /// Inserts `records` with every column (ids included), many rows per statement.
    static func insert(_ records: [Self], into session: any SQLSession) throws {
        try batched(records.map(\.values), columns: columns, into: session, tail: "")
    }

    /// Inserts `records`, many rows per statement, each replacing every non-key column of a row
    /// with the same key (`key` names the primary key). No two records may share a key.
    static func upsert(_ records: [Self], key: [String], into session: any SQLSession) throws {
        let others = columns.filter { !key.contains($0) }
        try batched(records.map(\.values), columns: columns, into: session, tail: " ON CONFLICT (\(key.joined(separator: ", "))) DO UPDATE SET "
                    + others.map { "\($0) = excluded.\($0)" }.joined(separator: ", "))
    }

    /// One `INSERT … VALUES (…), (…)` per batch of `rows` (values of `columns`): a round trip per
    /// batch, not per row.
    static func batched(_ rows: [[SQLValue]], columns: some Collection<String>, into session: any SQLSession, tail: String) throws {
        let row = "(" + Array(repeating: "?", count: columns.count).joined(separator: ", ") + ")"
        // Well under both backends' limits on bound values (SQLite 32,766; PostgreSQL 65,535).
        let perStatement = max(1, 8_000 / columns.count)
        var start = 0
        while start < rows.count {
            let batch = rows[start..<min(rows.count, start + perStatement)]
            try session.execute("INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES " + Array(repeating: row, count: batch.count).joined(separator: ", ") + tail,
                                batch.flatMap { $0 })
            start += batch.count
        }
    }

    /// Inserts, or on a key clash replaces every other column (`key` names the primary key).
    func upsert(_ session: any SQLSession, key: [String]) throws {
        try Self.upsert([self], key: key, into: session)
    }
}

/// A record whose first column is an id the database assigns.
protocol SQLIdentifiedRecord: SQLRecord {
    var id: Int64? { get set }
}

extension SQLIdentifiedRecord {
    /// Inserts `records` without their ids (the database gives them), many rows per statement.
    static func append(_ records: [Self], into session: any SQLSession) throws {
        try batched(records.map { Array($0.values.dropFirst()) }, columns: columns.dropFirst(), into: session, tail: "")
    }

    /// Inserts without the id and takes the one the database gave.
    mutating func insert(_ session: any SQLSession) throws {
        let columns = Self.columns.dropFirst()
        let placeholders = Array(repeating: "?", count: columns.count).joined(separator: ", ")
        let row = try session.row("INSERT INTO \(Self.table) (\(columns.joined(separator: ", "))) VALUES (\(placeholders)) RETURNING id",
                                  Array(values.dropFirst()))
        guard let row else { throw StoreError(.database, path: "", detail: "an insert into \(Self.table) returned no id") }
        id = try row.int64(0)
    }
}
