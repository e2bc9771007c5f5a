import CairnCore
import Testing
@testable import CairnServices

/// `--filter` with `--from-store`: MLflow's experiment search grammar evaluated in memory.
@Suite("Experiment filter match")
struct ExperimentFilterMatchTests {
    static let experiments = [
        Experiment(experimentID: "1", name: "prod-churn", artifactLocation: "", lifecycleStage: .active, creationTime: 100, lastUpdateTime: 200,
                   tags: [Tag("team", "nlp")]),
        Experiment(experimentID: "2", name: "Prod_fraud", artifactLocation: "", lifecycleStage: .deleted, creationTime: 300, lastUpdateTime: 400,
                   tags: [Tag("team", "vision")]),
        Experiment(experimentID: "3", name: "scratch", artifactLocation: "", lifecycleStage: .active, creationTime: 500, lastUpdateTime: 600, tags: []),
    ]

    func selected(_ filter: String) throws -> [String] {
        let expression = try SearchFilterParser.parse(filter, for: .experiments)
        return Self.experiments.filter { ExperimentFilterMatch.matches(expression, $0) }.map(\.experimentID)
    }

    @Test("Names, tags, times and ids select as MLflow's search does, LIKE case-sensitive and ILIKE not")
    func selectsAsMLflowSearchDoes() throws {
        #expect(try selected("name = 'scratch'") == ["3"])
        #expect(try selected("name LIKE 'prod-%'") == ["1"])
        #expect(try selected("name ILIKE 'prod%'") == ["1", "2"])
        #expect(try selected("name LIKE '_rod%'") == ["1", "2"])
        #expect(try selected("tags.team = 'nlp'") == ["1"])
        #expect(try selected("tags.team != 'nlp'") == ["2"])  // no tag: not selected
        #expect(try selected("tags.team IS NULL") == ["3"])
        #expect(try selected("creation_time >= 300 AND last_update_time < 600") == ["2"])
        #expect(try selected("experiment_id IN ('1', '3')") == ["1", "3"])
        #expect(try selected("name = 'scratch' OR tags.team = 'vision'") == ["2", "3"])
        #expect(try selected("NOT (name LIKE '%a%')") == ["1"])
        #expect(try selected("") == ["1", "2", "3"])
    }

    @Test("An unknown attribute is refused as MLflow's search refuses it")
    func refusesUnknownAttributes() {
        #expect(throws: CairnError.self) { try selected("colour = 'red'") }
    }
}
