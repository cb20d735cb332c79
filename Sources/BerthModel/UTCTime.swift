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

    /// Reads a point in time as operators write one: ISO 8601 (`2026-11-29T03:00:00Z`, an offset
    /// or fractional seconds allowed), `2026-11-29 03:00[:00]` or `2026-11-29T03:00[:00]` (UTC;
    /// what a browser's date-time field sends), or `2026-11-29` (midnight UTC). Surrounding spaces
    /// are ignored; nil for anything else.
    public static func parse(_ text: String) -> Date? {
        let t = text.trimmingCharacters(in: .whitespaces)
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime]
        if let d = iso.date(from: t) { return d }
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = iso.date(from: t) { return d }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        for format in ["yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd HH:mm", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd"] {
            f.dateFormat = format
            if let d = f.date(from: t) { return d }
        }
        return nil
    }
}
