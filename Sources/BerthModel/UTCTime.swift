import Foundation

/// Times as Berth prints them: UTC to the second, `2026-12-06 03:22:07Z`.
public enum UTCTime {
    /// Made once: a history table formats a time per row.
    nonisolated(unsafe) static let formatter: DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss'Z'"
        return f
    }()

    public static func text(_ date: Date) -> String { formatter.string(from: date) }
}
