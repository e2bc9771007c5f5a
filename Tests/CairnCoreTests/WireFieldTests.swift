import CairnCore
import Testing

@Suite("Request field types")
struct WireFieldTests {
    static let hint = "See the API docs for more information about request parameters."

    func message(_ body: () throws -> Void) -> String? {
        do { try body() } catch { return (error as? CairnError)?.message ?? "\(error)" }
        return nil
    }

    @Test("A string field takes only a JSON string; anything else is refused in MLflow's words, naming its Python type")
    func strings() throws {
        #expect(try WireField.string(.string("x"), field: "name") == "x")
        let cases: [(JSONValue, String)] = [
            (.number("123"), "Invalid value 123 for parameter 'name' supplied:  Hint: Value was of type 'int'. \(Self.hint)"),
            (.number("9.0"), "Invalid value 9.0 for parameter 'name' supplied:  Hint: Value was of type 'float'. \(Self.hint)"),
            (.bool(true), "Invalid value true for parameter 'name' supplied:  Hint: Value was of type 'bool'. \(Self.hint)"),
            (.array([.string("a")]), #"Invalid value ["a"] for parameter 'name' supplied:  Hint: Value was of type 'list'. "# + Self.hint),
            (.object([("a", .number("1"))]), #"Invalid value {"a":1} for parameter 'name' supplied:  Hint: Value was of type 'dict'. "# + Self.hint),
        ]
        for (value, expected) in cases {
            #expect(message { _ = try WireField.string(value, field: "name") } == expected)
        }
    }

    @Test("An int64 field takes integral numbers and the strings protobuf reads as one, and refuses fractions, bools and other strings")
    func integers() throws {
        #expect(try WireField.int64(.number("3"), field: "step") == 3)
        #expect(try WireField.int64(.number("3.0"), field: "step") == 3)
        #expect(try WireField.int64(.number("1e3"), field: "step") == 1000)
        #expect(try WireField.int64(.string("-7"), field: "step") == -7)
        #expect(try WireField.int64(.string("+7"), field: "step") == 7)
        #expect(try WireField.int64(.string("3.0"), field: "step") == 3)
        #expect(try WireField.int64(.string("1e3"), field: "step") == 1000)
        #expect(message { _ = try WireField.int64(.string("x"), field: "step") }
                == #"Invalid value "x" for parameter 'step' supplied:  Hint: Value was of type 'str'. "# + Self.hint)
        #expect(message { _ = try WireField.int64(.number("3.5"), field: "step") }
                == "Invalid value 3.5 for parameter 'step' supplied:  Hint: Value was of type 'float'. \(Self.hint)")
        for value: JSONValue in [.bool(true), .string(" 3"), .string("3.5"), .string("0x10"), .string("inf"), .string("nan"), .string(""),
                                 .number("9223372036854775808"), .array([]), .object([])] {
            #expect(message { _ = try WireField.int64(value, field: "step") } != nil, "\(value)")
        }
    }

    @Test("A double field takes numbers, numeric strings and MLflow's non-finite spellings, nothing else")
    func doubles() throws {
        #expect(try WireField.double(.number("1.5"), field: "value") == 1.5)
        #expect(try WireField.double(.string("2.5"), field: "value") == 2.5)
        #expect(try WireField.double(.string("NaN"), field: "value").isNaN)
        #expect(try WireField.double(.string("-Infinity"), field: "value") == -.infinity)
        // As Python's float() reads a string: spaces around it, inf/nan spellings, overflow to infinity.
        #expect(try WireField.double(.string(" 2.5\n"), field: "value") == 2.5)
        #expect(try WireField.double(.string("-1E2"), field: "value") == -100)
        #expect(try WireField.double(.string("+inf"), field: "value") == .infinity)
        #expect(try WireField.double(.string("-INFINITY"), field: "value") == -.infinity)
        #expect(try WireField.double(.string("nan"), field: "value").isNaN)
        #expect(try WireField.double(.string("1e400"), field: "value") == .infinity)
        for text in ["0x10", "1,5", "", " ", "--1", "infinit", "1e"] {
            #expect(message { _ = try WireField.double(.string(text), field: "value") } != nil, "\(text)")
        }
        #expect(message { _ = try WireField.double(.string("abc"), field: "value") }
                == #"Invalid value "abc" for parameter 'value' supplied:  Hint: Value was of type 'str'. "# + Self.hint)
        for value: JSONValue in [.bool(true), .number("1e999"), .array([]), .object([])] {
            #expect(message { _ = try WireField.double(value, field: "value") } != nil, "\(value)")
        }
    }

    @Test("A bool field takes only true and false")
    func bools() throws {
        #expect(try WireField.bool(.bool(false), field: "flag") == false)
        #expect(message { _ = try WireField.bool(.string("true"), field: "flag") }
                == #"Invalid value "true" for parameter 'flag' supplied:  Hint: Value was of type 'str'. "# + Self.hint)
        #expect(message { _ = try WireField.bool(.number("1"), field: "flag") } != nil)
    }
}

@Suite("Artifact locations")
struct ArtifactLocationTests {
    @Test("A relative local artifact location is made absolute against the server's directory, as MLflow does")
    func relativeLocations() {
        let cases = [
            ("relative/dir", "/srv/work/relative/dir"),
            ("./x", "/srv/work/x"),
            ("x/", "/srv/work/x"),
            ("a//b/./c", "/srv/work/a/b/c"),
            ("../up", "/srv/work/../up"),
            ("file:relative", "file:///srv/work/relative"),
            ("/abs/path", "/abs/path"),
            ("file:///abs", "file:///abs"),
            ("mlflow-artifacts:/foo", "mlflow-artifacts:/foo"),
            ("s3://b/p", "s3://b/p"),
        ]
        for (given, expected) in cases {
            #expect(ArtifactLocation.resolvingRelativePath(given, against: "/srv/work") == expected, "\(given)")
        }
        #expect(ArtifactLocation.resolvingRelativePath("x", against: "/srv/work/") == "/srv/work/x")
    }

    @Test("A scheme is letters, digits, + . - before the first colon; one letter is a Windows drive")
    func schemes() {
        #expect(ArtifactLocation.scheme(of: "S3://b/k") == "s3")
        #expect(ArtifactLocation.scheme(of: "mlflow-artifacts:/1") == "mlflow-artifacts")
        #expect(ArtifactLocation.scheme(of: "C:\\m") == nil)
        #expect(ArtifactLocation.scheme(of: "dir/a:b") == nil)
        #expect(ArtifactLocation.scheme(of: "plain") == nil)
    }
}
