import Foundation

/// What MLflow 3.17.2's tracking store adds to a span it stores (`translate_span_when_storing`
/// in `mlflow/tracing/otel/translation`), so that a span from an OpenTelemetry-instrumented app
/// (the GenAI semantic conventions, and the OpenInference and Traceloop keys MLflow reads
/// before and after them) has MLflow's own attributes: its type, inputs, outputs, token usage,
/// tool definitions, model and provider. An attribute the span already has is never changed;
/// each is added only when MLflow adds it, with the value MLflow gives it.
///
/// Values are read as MLflow reads them after `sanitize_attributes`: a string holding JSON text
/// of a string, an object or an array counts as that JSON value (an exporter writing
/// `json.dumps(messages)`), anything else as itself. Not translated here (see the README):
/// Traceloop's numbered `gen_ai.prompt.<n>.content` and `gen_ai.completion.<n>.content` inputs
/// and outputs, the other conventions MLflow knows (Claude Code, Gemini CLI, Google ADK, Vercel AI,
/// VoltAgent, LiveKit, Laminar, Langfuse, Spring AI), inputs and outputs read from span events,
/// and a cost priced from LiteLLM's model tables.
public enum OTelSpanTranslation {
    public static let spanTypeKey = "mlflow.spanType"
    public static let inputsKey = "mlflow.spanInputs"
    public static let outputsKey = "mlflow.spanOutputs"
    public static let toolsKey = "mlflow.chat.tools"

    /// One convention's keys, in MLflow's order of translators (the first that gives a value wins).
    struct Convention {
        var spanKindKey: String?
        var spanKinds: [String: String] = [:]
        var inputTokens: String?
        var outputTokens: String?
        var totalTokens: String?
        var cacheReadTokens: String?
        var cacheCreationTokens: [String] = []
        var inputKeys: [String] = []
        var outputKeys: [String] = []
        var modelKeys: [String] = []
        var providerKey: String?
        var toolKeys: [String] = []
    }

    static let conventions: [Convention] = [
        // OpenInference (Arize).
        Convention(spanKindKey: "openinference.span.kind",
                   spanKinds: ["TOOL": "TOOL", "CHAIN": "CHAIN", "LLM": "LLM", "RETRIEVER": "RETRIEVER", "EMBEDDING": "EMBEDDING",
                               "AGENT": "AGENT", "RERANKER": "RERANKER", "UNKNOWN": "UNKNOWN", "GUARDRAIL": "GUARDRAIL",
                               "EVALUATOR": "EVALUATOR"],
                   inputTokens: "llm.token_count.prompt", outputTokens: "llm.token_count.completion",
                   totalTokens: "llm.token_count.total", cacheReadTokens: "llm.token_count.prompt_details.cache_read",
                   cacheCreationTokens: ["llm.token_count.prompt_details.cache_write"],
                   inputKeys: ["input.value"], outputKeys: ["output.value"],
                   modelKeys: ["llm.response.model_name", "llm.model_name", "llm.request.model_name", "embedding.model_name"],
                   providerKey: "llm.provider"),
        // OpenTelemetry's GenAI semantic conventions.
        Convention(spanKindKey: "gen_ai.operation.name",
                   spanKinds: ["chat": "CHAT_MODEL", "create_agent": "AGENT", "embeddings": "EMBEDDING", "execute_tool": "TOOL",
                               "generate_content": "LLM", "invoke_agent": "AGENT", "text_completion": "LLM", "response": "LLM"],
                   inputTokens: "gen_ai.usage.input_tokens", outputTokens: "gen_ai.usage.output_tokens",
                   cacheReadTokens: "gen_ai.usage.cache_read.input_tokens",
                   cacheCreationTokens: ["gen_ai.usage.cache_write.input_tokens", "gen_ai.usage.cache_creation.input_tokens"],
                   inputKeys: ["gen_ai.input.messages", "gen_ai.tool.call.arguments"],
                   outputKeys: ["gen_ai.output.messages", "gen_ai.tool.call.result"],
                   modelKeys: ["gen_ai.response.model", "gen_ai.request.model"], providerKey: "gen_ai.provider.name",
                   toolKeys: ["gen_ai.tool.definitions"]),
        // Traceloop (OpenLLMetry): its older `gen_ai.*` token keys and `gen_ai.system`.
        Convention(spanKindKey: "traceloop.span.kind",
                   spanKinds: ["workflow": "WORKFLOW", "task": "TASK", "agent": "AGENT", "tool": "TOOL", "unknown": "UNKNOWN"],
                   inputTokens: "gen_ai.usage.prompt_tokens", outputTokens: "gen_ai.usage.completion_tokens",
                   totalTokens: "llm.usage.total_tokens", inputKeys: ["traceloop.entity.input"],
                   outputKeys: ["traceloop.entity.output"], providerKey: "gen_ai.system"),
    ]

    /// `span` with the attributes MLflow's store would add to it.
    public static func translated(_ span: OTLPSpan) -> OTLPSpan {
        var attributes: [String: JSONValue] = [:]
        for kv in span.attributes { attributes[kv.key] = kv.value.map { plain($0) } ?? JSONValue.null }
        var added: [(String, JSONValue)] = []
        func add(_ key: String, _ value: JSONValue) {
            attributes[key] = value
            added.append((key, value))
        }
        if let type = spanType(attributes) {
            let current = attributes[spanTypeKey]
            if current == nil || current == .null || current == .string("UNKNOWN") { add(spanTypeKey, .string(type)) }
        }
        if attributes[inputsKey] == nil, let value = first(attributes, \.inputKeys) { add(inputsKey, value) }
        if attributes[outputsKey] == nil, let value = first(attributes, \.outputKeys) { add(outputsKey, value) }
        if attributes[MLflowSpanDocument.tokenUsageKey] == nil, let usage = tokenUsage(attributes) { add(MLflowSpanDocument.tokenUsageKey, usage) }
        if attributes[toolsKey] == nil, let tools = first(attributes, \.toolKeys) { add(toolsKey, tools) }
        if attributes[MLflowSpanDocument.modelKey] == nil, let model = modelName(attributes) { add(MLflowSpanDocument.modelKey, model) }
        if attributes[MLflowSpanDocument.modelProviderKey] == nil,
           let provider = conventions.lazy.compactMap({ $0.providerKey.flatMap { key in attributes[key].flatMap(truthy) } }).first {
            add(MLflowSpanDocument.modelProviderKey, provider)
        }
        guard !added.isEmpty else { return span }
        var out = span
        for (key, value) in added {
            if let i = out.attributes.firstIndex(where: { $0.key == key }) {
                out.attributes[i].value = anyValue(value)
            } else {
                out.attributes.append(OTLPKeyValue(key: key, value: anyValue(value)))
            }
        }
        return out
    }

    static func spanType(_ attributes: [String: JSONValue]) -> String? {
        for convention in conventions {
            guard let key = convention.spanKindKey, let kind = attributes[key].flatMap(truthy) else { continue }
            if case .string(let name) = kind, let type = convention.spanKinds[name] { return type }
        }
        return nil
    }

    /// The first present, truthy value of the keys a convention names, in convention order.
    static func first(_ attributes: [String: JSONValue], _ keys: KeyPath<Convention, [String]>) -> JSONValue? {
        for convention in conventions {
            for key in convention[keyPath: keys] {
                if let value = attributes[key].flatMap(truthy) { return value }
            }
        }
        return nil
    }

    /// MLflow's `_get_token_usage`: the first convention giving any of input, output or total
    /// (a total made from input and output when it is not given), with its cache counts.
    static func tokenUsage(_ attributes: [String: JSONValue]) -> JSONValue? {
        func count(_ key: String?) -> Int64? { key.flatMap { attributes[$0] }.flatMap(integer) }
        for convention in conventions {
            let input = count(convention.inputTokens), output = count(convention.outputTokens)
            var total = count(convention.totalTokens)
            if total == nil, let input, let output { total = input &+ output }
            guard input != nil || output != nil || total != nil else { continue }
            var usage: [(String, JSONValue)] = []
            for (name, value) in [("input_tokens", input), ("output_tokens", output), ("total_tokens", total),
                                  ("cache_read_input_tokens", count(convention.cacheReadTokens)),
                                  ("cache_creation_input_tokens", convention.cacheCreationTokens.lazy.compactMap { count($0) }.first)] {
                if let value { usage.append((name, .number(String(value)))) }
            }
            return .object(usage)
        }
        return nil
    }

    /// MLflow's `_parse_int_attribute`: an integer, or a string holding one.
    static func integer(_ value: JSONValue) -> Int64? {
        switch value {
        case .number(let text): return Int64(text)
        case .string(let text): return Int64(text.trimmingCharacters(in: .whitespaces))
        default: return nil
        }
    }

    /// MLflow's `_get_model_name`: a convention's model keys, else the `model` of the span's
    /// inputs, else of its outputs (when they are objects).
    static func modelName(_ attributes: [String: JSONValue]) -> JSONValue? {
        if let model = first(attributes, \.modelKeys) { return model }
        for key in [inputsKey, outputsKey] {
            guard let object = attributes[key], case .object = object, let model = object["model"].flatMap(truthy) else { continue }
            if case .string = model { return model }
            return nil
        }
        return nil
    }

    /// An attribute value as MLflow reads it once `sanitize_attributes` has run: a string of
    /// JSON text holding a string, an object or an array is that value; anything else itself.
    static func plain(_ value: OTLPAnyValue) -> JSONValue {
        switch value {
        case .string(let text):
            if let parsed = try? JSONValue.parse(text) {
                switch parsed {
                case .string, .object, .array: return parsed
                default: break
                }
            }
            return .string(text)
        case .bool(let b): return .bool(b)
        case .int(let i): return .number(String(i))
        case .double(let d): return d.isFinite ? .number(TraceAnalytics.pythonRepr(d)) : .null
        case .array(let items): return .array(items.map(plain(nested:)))
        case .kvlist(let items): return .object(items.map { ($0.key, $0.value.map(plain(nested:)) ?? .null) })
        case .bytes(let bytes): return .string(Base64.encode(bytes))
        case .empty: return .null
        }
    }

    /// A value inside an array or key-value list: decoded, never read as JSON text.
    static func plain(nested value: OTLPAnyValue) -> JSONValue {
        if case .string(let text) = value { return .string(text) }
        return plain(value)
    }

    /// `value` unless Python reads it as false (None, false, 0, "", [] or {}).
    static func truthy(_ value: JSONValue) -> JSONValue? {
        switch value {
        case .null, .bool(false): return nil
        case .number(let text): return Double(text) == 0 ? nil : value
        case .string(let s): return s.isEmpty ? nil : value
        case .array(let items): return items.isEmpty ? nil : value
        case .object(let members): return members.isEmpty ? nil : value
        default: return value
        }
    }

    /// A JSON value as the OTLP value MLflow answers for it (`_set_otel_proto_anyvalue`).
    static func anyValue(_ value: JSONValue) -> OTLPAnyValue {
        switch value {
        case .null: return .empty
        case .bool(let b): return .bool(b)
        case .number(let text):
            if let whole = Int64(text) { return .int(whole) }
            return .double(Double(text) ?? .nan)
        case .string(let s): return .string(s)
        case .array(let items): return .array(items.map(anyValue))
        case .object(let members): return .kvlist(members.map { OTLPKeyValue(key: $0.0, value: anyValue($0.1)) })
        }
    }
}
