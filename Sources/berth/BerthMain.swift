import BerthCLI
import Foundation

@main
struct BerthMain {
    static func main() async {
        // State files are created readable by their owner only.
        umask(0o077)
        await Berth.main(nil)
    }
}
