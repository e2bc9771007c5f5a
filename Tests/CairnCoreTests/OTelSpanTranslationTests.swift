import CairnCore
import Testing

@Suite("OpenTelemetry span attributes translated as MLflow's store translates them")
struct OTelSpanTranslationTests {
    static func span(_ attributes: [(String, OTLPAnyValue)]) -> OTLPSpan {
        var span = OTLPSpan()
        span.name = "s"
        span.attributes = attributes.map { OTLPKeyValue(key: $0.0, value: $0.1) }
        return span
    }

    static func added(_ attributes: [(String, OTLPAnyValue)]) -> [String: OTLPAnyValue] {
        let before = Set(attributes.map(\.0))
        var out: [String: OTLPAnyValue] = [:]
        for kv in OTelSpanTranslation.translated(span(attributes)).attributes where !before.contains(kv.key) { out[kv.key] = kv.value }
        return out
    }

    @Test("GenAI token usage, model, provider, type and messages become MLflow's attributes")
    func genAI() {
        let added = Self.added([
            ("gen_ai.operation.name", .string("chat")), ("gen_ai.provider.name", .string("openai")),
            ("gen_ai.request.model", .string("gpt-x")), ("gen_ai.response.model", .string("gpt-x-1")),
            ("gen_ai.usage.input_tokens", .int(12)), ("gen_ai.usage.output_tokens", .int(30)),
            ("gen_ai.usage.cache_creation.input_tokens", .int(2)),
            ("gen_ai.input.messages", .string(#"[{"role": "user", "content": "hi"}]"#)),
        ])
        #expect(added["mlflow.spanType"] == .string("CHAT_MODEL"))
        #expect(added["mlflow.llm.model"] == .string("gpt-x-1"))
        #expect(added["mlflow.llm.provider"] == .string("openai"))
        #expect(added["mlflow.chat.tokenUsage"] == .kvlist([
            OTLPKeyValue(key: "input_tokens", value: .int(12)), OTLPKeyValue(key: "output_tokens", value: .int(30)),
            OTLPKeyValue(key: "total_tokens", value: .int(42)), OTLPKeyValue(key: "cache_creation_input_tokens", value: .int(2)),
        ]))
        // JSON text of an array is read as the array (MLflow's `sanitize_attributes`).
        #expect(added["mlflow.spanInputs"] == .array([.kvlist([OTLPKeyValue(key: "role", value: .string("user")),
                                                               OTLPKeyValue(key: "content", value: .string("hi"))])]))
        #expect(added["mlflow.spanOutputs"] == nil)
    }

    @Test("What the span already has is kept; missing or unreadable counts add nothing")
    func kept() {
        let given: [(String, OTLPAnyValue)] = [
            ("mlflow.spanType", .string("LLM")), ("gen_ai.operation.name", .string("chat")),
            ("mlflow.chat.tokenUsage", .string(#"{"input_tokens": 1}"#)), ("gen_ai.usage.input_tokens", .int(5)),
            ("mlflow.llm.model", .string("mine")), ("gen_ai.request.model", .string("theirs")),
        ]
        #expect(OTelSpanTranslation.translated(Self.span(given)) == Self.span(given))
        #expect(Self.added([("gen_ai.usage.input_tokens", .double(1.5)), ("gen_ai.usage.output_tokens", .string("x"))]).isEmpty)
        // An UNKNOWN type is replaced; an output count alone has no total.
        let unknown = Self.added([("mlflow.spanType", .string("UNKNOWN")), ("gen_ai.operation.name", .string("execute_tool")),
                                  ("gen_ai.usage.output_tokens", .string("7"))])
        #expect(unknown["mlflow.chat.tokenUsage"] == .kvlist([OTLPKeyValue(key: "output_tokens", value: .int(7))]))
        #expect(OTelSpanTranslation.translated(Self.span([("mlflow.spanType", .string("UNKNOWN")), ("gen_ai.operation.name", .string("execute_tool"))]))
            .attribute("mlflow.spanType") == .string("TOOL"))
    }

    @Test("Conventions are read in MLflow's order, and the model falls back to the inputs' model")
    func order() {
        let both = Self.added([("llm.token_count.prompt", .int(1)), ("llm.token_count.completion", .int(2)), ("llm.token_count.total", .int(4)),
                               ("gen_ai.usage.input_tokens", .int(10)), ("gen_ai.usage.output_tokens", .int(20))])
        #expect(both["mlflow.chat.tokenUsage"] == .kvlist([OTLPKeyValue(key: "input_tokens", value: .int(1)), OTLPKeyValue(key: "output_tokens", value: .int(2)),
                                                           OTLPKeyValue(key: "total_tokens", value: .int(4))]))
        let traceloop = Self.added([("gen_ai.system", .string("anthropic")), ("gen_ai.usage.prompt_tokens", .int(5)),
                                    ("gen_ai.usage.completion_tokens", .int(6))])
        #expect(traceloop["mlflow.llm.provider"] == .string("anthropic"))
        #expect(traceloop["mlflow.chat.tokenUsage"] == .kvlist([OTLPKeyValue(key: "input_tokens", value: .int(5)), OTLPKeyValue(key: "output_tokens", value: .int(6)),
                                                                OTLPKeyValue(key: "total_tokens", value: .int(11))]))
        let fromInputs = Self.added([("mlflow.spanInputs", .string(#"{"model": "local-7b", "prompt": "x"}"#))])
        #expect(fromInputs["mlflow.llm.model"] == .string("local-7b"))
        #expect(Self.added([("mlflow.spanInputs", .kvlist([OTLPKeyValue(key: "model", value: .int(3))]))]).isEmpty)
    }
}
