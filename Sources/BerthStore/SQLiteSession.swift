import Foundation
import GRDB

/// A session on a SQLite database through GRDB, inside the read or write transaction GRDB opened.
struct SQLiteSession: SQLSession {
    let db: Database
    var dialect: SQLDialect { .sqlite }

    @discardableResult
    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        try db.execute(sql: sql, arguments: Self.arguments(arguments))
        return db.changesCount
    }

    func rows(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        var out: [SQLRow] = []
        let cursor = try Row.fetchCursor(db, sql: sql, arguments: Self.arguments(arguments))
        while let row = try cursor.next() {
            out.append(SQLRow(values: row.databaseValues.map(Self.value)))
        }
        return out
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
