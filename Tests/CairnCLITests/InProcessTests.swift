import ArgumentParser
import CairnClient
import CairnCore
import Foundation
import Testing
@testable import CairnCLI

/// The commands run in this process (parsed exactly as the binary parses its arguments) against
/// a real server subprocess.
@Suite(.serialized) struct InProcessTests {
    @Test func runExecutesInProcessAndCheckJudgesTheResult() async throws {
        let server = try ServerProcess()
        let repo = try TempFolder()
        try makeGitRepository(in: repo)
        let command = try RunCommand.parse(["--tracking-uri", server.uri, "--experiment", "in-process", "--seed", "11",
                                            "--system-metrics-interval", "0", "--", "sh", "-c", "exit 0"])
        setenv("CAIRN_JOURNAL_DIR", repo.path + "/journal", 1)
        let outcome = try await command.execute(workingDirectory: repo.path, extraTags: [Tag("origin", "test")])
        #expect(outcome.status == .finished)
        #expect(outcome.exitCode == 0)
        #expect(outcome.uploadedEverything)
        let id = try #require(outcome.runID)
        let run = try await TrackingClient(trackingURI: server.uri).getRun(id: id)
        #expect(run.tagMap["origin"] == "test")
        #expect(run.tagMap["cairn.git.dirty"] == "false")
        #expect(run.paramMap["cairn.seed.CAIRN_SEED"] == "11")

        let passing = try CheckCommand.parse([id, "--tracking-uri", server.uri, "--require", "code,seed,env,finished"])
        try await passing.run()
        let failing = try CheckCommand.parse([id, "--tracking-uri", server.uri, "--require", "data"])
        await #expect(throws: ExitCode(1)) { try await failing.run() }
    }

    @Test func theRunCommandRefusesAMissingCommandAndABadTag() {
        #expect(throws: (any Error).self) { try RunCommand.parse([]) }
        #expect(throws: (any Error).self) { try RunCommand.parse(["--tag", "novalue", "--", "true"]) }
        #expect(throws: (any Error).self) { try CheckCommand.parse(["abc", "--require", "vibes"]) }
    }
}
