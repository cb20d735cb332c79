import Foundation
import GRDB

/// A session on a SQLite database through GRDB, inside the read or write transaction the store
/// opened. A read session refuses any statement that would write.
struct SQLiteSession: SQLSession {
    let db: Database
    var readOnly = false
    var dialect: SQLDialect { .sqlite }

    @discardableResult
    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        if let statement = try statement(sql, arguments) {
            try statement.execute(arguments: Self.arguments(arguments))
        } else {
            // Several statements in one text (the migrations): compiled each time.
            try db.execute(sql: sql, arguments: Self.arguments(arguments))
        }
        return db.changesCount
    }

    func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        var out: [SQLRow] = []
        let statement = try statement(sql, arguments) ?? db.makeStatement(sql: sql)
        let cursor = try Row.fetchCursor(statement, arguments: Self.arguments(arguments))
        while let row = try cursor.next() {
            out.append(SQLRow(values: row.databaseValues.map(Self.value)))
        }
        return out
    }

    /// The statement for `sql`: for the small statements a controller runs every pass (the lease's,
    /// the fence, status reads), the compiled one the connection keeps, since compiling them was
    /// most of their cost. Multi-row writes (one text per row count) are compiled each time, so
    /// the cache stays small; nil for a text of several statements (the migrations), which is
    /// for `Database.execute`.
    /// In a read session every statement is made here, and checked here.
    private func statement(_ sql: String, _ arguments: [SQLValue]) throws -> Statement? {
        let statement: Statement
        if arguments.count <= Self.cachedArgumentLimit && !sql.contains(";") {
            statement = try db.cachedStatement(sql: sql)
        } else if readOnly {
            statement = try db.makeStatement(sql: sql)
        } else {
            return nil
        }
        try refuseWrite(statement)
        return statement
    }

    static let cachedArgumentLimit = 8

    /// A read session's guard: SQLite itself would only refuse the write at its end, if at all.
    private func refuseWrite(_ statement: Statement) throws {
        guard readOnly, !statement.isReadonly else { return }
        throw DatabaseError(resultCode: .SQLITE_READONLY, message: "a write in a read transaction", sql: statement.sql)
    }

    static func arguments(_ values: [SQLValue]) -> StatementArguments {
        StatementArguments(values.map { value -> DatabaseValue in
            switch value {
            case .null: .null
            case .int(let n): n.databaseValue
            case .double(let d): d.databaseValue
            case .text(let s): s.databaseValue
            case .bool(let b): b.databaseValue
            // GRDB's own text format, so that dates compare and read as they always have.
            case .date(let d): d.databaseValue
            }
        })
    }

    static func value(_ value: DatabaseValue) -> SQLValue {
        switch value.storage {
        case .null: .null
        case .int64(let n): .int(n)
        case .double(let d): .double(d)
        case .string(let s): .text(s)
        case .blob(let data): .text(String(decoding: data, as: UTF8.self))
        }
    }
}
