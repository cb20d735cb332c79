@testable import BerthStore
import Foundation
import Testing

@Suite("PostgreSQL state URLs and passwords by reference")
struct PostgresLocationTests {
    @Test func aURLIsRead_withDefaults() throws {
        let full = try PostgresLocation.parse("postgres://berth@db.internal:6543/fleet?sslmode=require")
        #expect(full == PostgresLocation(user: "berth", host: "db.internal", port: 6543, database: "fleet", sslMode: .require))
        let plain = try PostgresLocation.parse("postgresql://ops@10.0.0.5/berth")
        #expect(plain.port == 5432 && plain.sslMode == .prefer)
        #expect(plain.description == "postgres://ops@10.0.0.5:5432/berth?sslmode=prefer")
        #expect(PostgresLocation.isURL("postgres://a@b/c") && !PostgresLocation.isURL("state/berth.db"))
    }

    @Test func aPasswordInTheURL_isRefused_withoutRepeatingIt() {
        #expect {
            try PostgresLocation.parse("postgres://berth:s3cret-value@db/fleet")
        } throws: { error in
            let text = "\(error)"
            return (error as? StoreError)?.code == .invalidLocation && !text.contains("s3cret-value")
                && text.contains("password written in it") && text.contains("PGPASSFILE")
        }
    }

    @Test func redacting_showsNoPasswordWhereverItIs() {
        #expect(PostgresLocation.redacted("postgres://berth:p%40ss@db:5432/fleet") == "postgres://berth:***@db:5432/fleet")
        #expect(PostgresLocation.redacted("postgres://berth@db/fleet") == "postgres://berth@db/fleet")
        #expect(PostgresLocation.redacted("postgres://berth@db/fleet?password=s3cret") == "postgres://berth@db/fleet?…")
        // A raw / in the password: where the password ends cannot be told, so nothing past the scheme shows.
        #expect(PostgresLocation.redacted("postgres://berth:pa/ss@db/fleet") == "postgres://…")
    }

    @Test(arguments: ["postgres://berth@db/fleet?password=s3cret", "postgres://berth:pa/ss@db/fleet", "postgres://berth:s3cret@/fleet"])
    func noRefusalRepeatsAPassword(text: String) {
        #expect { try PostgresLocation.parse(text) } throws: { !"\($0)".contains("s3cret") && !"\($0)".contains("pa/ss") }
    }

    @Test(arguments: [
        ("postgres://db/fleet", "names no user"),
        ("postgres://berth@/fleet", "names no host"),
        ("postgres://berth@db", "names no database"),
        ("postgres://berth@db:0/fleet", "out of range"),
        ("postgres://berth@db/fleet?sslmode=verify", "sslmode \"verify\""),
        ("postgres://berth@db/fleet?application_name=x", "\"application_name\""),
    ])
    func badURLsSayWhatIsWrong(text: String, says: String) {
        #expect { try PostgresLocation.parse(text) } throws: { "\($0)".contains(says) }
    }

    @Test func thePasswordFileMatchesLikeLibpq() {
        let file = """
            # host:port:database:user:password
            other:5432:*:berth:nope
            db:5432:fleet:ops:first
            db:*:*:berth:pa\\:ss\\\\word
            *:*:*:*:fallback
            """
        #expect(PostgresLocation.match(in: file, host: "db", port: 6543, database: "fleet", user: "berth") == "pa:ss\\word")
        #expect(PostgresLocation.match(in: file, host: "db", port: 5432, database: "fleet", user: "ops") == "first")
        #expect(PostgresLocation.match(in: file, host: "x", port: 1, database: "y", user: "z") == "fallback")
        #expect(PostgresLocation.match(in: "db:5432:fleet:ops", host: "db", port: 5432, database: "fleet", user: "ops") == nil)
    }

    @Test func passwordFiles_mustBePrivate() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-pw-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let location = PostgresLocation(user: "berth", host: "db", database: "fleet")
        let file = dir + "/pw"
        try "s3cret\n".write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
        #expect { try location.password(file: file) } throws: { "\($0)".contains("chmod 600") && !"\($0)".contains("s3cret") }
        chmod(file, 0o600)
        #expect(try location.password(file: file) == "s3cret")
        let pgpass = dir + "/pgpass"
        try "db:5432:fleet:berth:from-pgpass\n".write(toFile: pgpass, atomically: true, encoding: .utf8)
        chmod(pgpass, 0o600)
        #expect(try location.password(file: nil, environment: ["PGPASSFILE": pgpass]) == "from-pgpass")
        #expect(try location.password(file: nil, environment: ["HOME": dir]) == nil, "no ~/.pgpass: no password")
    }
}
