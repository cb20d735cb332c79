import BerthModel
import Foundation

/// Points in time as typed on the command line.
enum TimeArgument {
    /// Reads `2026-11-29T03:00:00Z`, `2026-11-29T03:00:00+01:00`, `2026-11-29 03:00[:00]` (UTC),
    /// `2026-11-29` (midnight UTC), or a time before now: `30m`, `2h`, `1d` ago written `-30m`, `-2h`, `-1d`.
    static func parse(_ text: String, now: Date = Date()) -> Date? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("-"), let unit = t.last, let amount = Double(t.dropFirst().dropLast()), amount >= 0 {
            let seconds: Double? = switch unit {
            case "s": 1
            case "m": 60
            case "h": 3600
            case "d": 86400
            default: nil
            }
            return seconds.map { now.addingTimeInterval(-amount * $0) }
        }
        return UTCTime.parse(t)
    }

    static let help = "a time: 2026-11-29T03:00:00Z, \"2026-11-29 03:00\" (UTC), 2026-11-29, or =-2h / =-30m / =-1d for that long ago (e.g. --at=-2h)"
}
