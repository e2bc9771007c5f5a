import CairnCore
import Testing

@Suite("CRC-32C")
struct CRC32CTests {
    @Test("The checksum of the standard test string is the published one, with and without the CPU's instruction")
    func knownValue() {
        let bytes = Array("123456789".utf8)
        #expect(CRC32C.checksum(bytes) == 0xE306_9283)
        #expect(bytes.withUnsafeBytes { CRC32C.softwareChecksum($0) } == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
    }

    @Test("The CPU's instruction and the tables agree on every length, offset and continuation")
    func hardwareMatchesTables() {
        var generator = SystemRandomNumberGenerator()
        let data = (0..<4_096).map { _ in UInt8.random(in: 0...255, using: &generator) }
        data.withUnsafeBytes { all in
            for length in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 900, 4_000] {
                for offset in [0, 1, 3, 7] {
                    let slice = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
                    #expect(CRC32C.checksum(slice) == CRC32C.softwareChecksum(slice), "length \(length), offset \(offset)")
                    #expect(CRC32C.checksum(slice, continuing: 0x1234_5678) == CRC32C.softwareChecksum(slice, continuing: 0x1234_5678))
                }
            }
        }
    }
}
