/// Readable names for runs created without one, in MLflow's `adjective-noun-NNN` form.
public enum RunNameGenerator {
    static let adjectives = [
        "able", "amber", "bold", "brave", "bright", "calm", "clever", "crisp", "eager", "fair",
        "gentle", "glad", "grand", "honest", "keen", "kind", "lively", "lucky", "merry", "mighty",
        "neat", "noble", "polite", "proud", "quick", "quiet", "rare", "sharp", "silent", "smooth",
        "steady", "sunny", "swift", "tidy", "vast", "warm", "wise", "witty", "young", "zesty",
    ]
    static let nouns = [
        "ant", "bass", "bear", "bee", "bird", "cat", "colt", "crab", "crow", "deer", "dove",
        "eel", "elk", "finch", "fox", "frog", "goat", "hare", "hawk", "heron", "horse", "ibis",
        "jay", "koi", "lark", "lynx", "mole", "moth", "newt", "owl", "panda", "quail", "ram",
        "robin", "seal", "shrew", "snail", "swan", "toad", "wolf", "wren", "yak",
    ]

    public static func make<G: RandomNumberGenerator>(using generator: inout G) -> String {
        let adjective = adjectives.randomElement(using: &generator)!
        let noun = nouns.randomElement(using: &generator)!
        return "\(adjective)-\(noun)-\(Int.random(in: 0..<1000, using: &generator))"
    }

    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        return make(using: &generator)
    }
}
