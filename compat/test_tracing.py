"""MLflow 3 tracing with the real client: @mlflow.trace and mlflow.start_span (spans go to /v1/traces as
OTLP protobuf, the summary to StartTraceV3), get_trace round trips, search_traces with filters into
pandas, trace tags, deletes, links to runs, log_feedback / log_expectation, an OpenTelemetry SDK
exporter pointed at /v1/traces, and bad input answered with MLflow's error codes, changing nothing.

Every test passes against `mlflow server` 3.17.2 as well (COMPAT_ORACLE=mlflow)."""

import gzip
import json
import logging
import os
import time
import uuid

# Traces are written before the traced call returns, so a test can read them back at once.
os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"

import mlflow  # noqa: E402
import pytest  # noqa: E402
from mlflow.entities import AssessmentSource, Expectation, Feedback, SpanEvent, SpanStatusCode  # noqa: E402

from conftest import SERVER_URI, unique_name  # noqa: E402

V3 = "/api/3.0/mlflow/"


def trace_info(trace_id):
    """The trace's summary through the client's own v3 read (GET /api/3.0/mlflow/traces/{id})."""
    from mlflow.tracing.client import TracingClient

    return TracingClient(SERVER_URI).get_trace_info(trace_id)


def search_ids(experiment_id, filter_string):
    """The ids of the traces `mlflow.search_traces` finds in the experiment with the filter, newest first."""
    return [t.info.trace_id for t in mlflow.search_traces(locations=[experiment_id], filter_string=filter_string, return_type="list")]


@pytest.fixture
def traced_experiment(client):
    exp_id = client.create_experiment(unique_name("compat-traces"))
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture
def no_client_warnings():
    """The client drops traces it cannot send with a warning: there must be none. (mlflow's logger does not
    propagate to the root logger, so pytest's caplog would not see them: listen on it directly.)"""
    collect = _Collect()
    logger = logging.getLogger("mlflow")
    logger.addHandler(collect)
    try:
        yield collect
    finally:
        logger.removeHandler(collect)
    assert collect.messages == []


def test_the_warning_check_sees_mlflow_warnings(no_client_warnings):
    logging.getLogger("mlflow.tracing.export.mlflow_v3").warning("Failed to send trace to MLflow backend: probe")
    assert no_client_warnings.messages == ["mlflow.tracing.export.mlflow_v3: Failed to send trace to MLflow backend: probe"]
    no_client_warnings.messages.clear()


# Inputs and outputs with the shapes that break lossy round trips: unicode, floats that are not
# exact in binary, big integers, nesting, None, empty containers, booleans.
PAYLOAD = {
    "text": "naïve – 日本語 \"quoted\" \\ back\nslash",
    "floats": [0.1, 1e-300, -2.5, 1.7976931348623157e308],
    "big": 9007199254740993,
    "nested": {"list": [1, [2, [3, {}]], []], "none": None, "flag": True, "off": False},
}


@mlflow.trace(name="retrieve", span_type="RETRIEVER", attributes={"k": 3, "source": "docs"})
def retrieve(question):
    return [{"doc": "a", "score": 0.25}, {"doc": "b", "score": 0.75}]


@mlflow.trace(span_type="LLM")
def fake_llm(prompt, payload):
    span = mlflow.get_current_active_span()
    span.set_attribute("mlflow.chat.tokenUsage", {"input_tokens": 12, "output_tokens": 30, "total_tokens": 42})
    span.add_event(SpanEvent("token", attributes={"index": 1, "text": "hi"}))
    return {"answer": "42", "echo": payload}


@mlflow.trace(name="app", span_type="CHAIN")
def app(question, payload):
    docs = retrieve(question)
    with mlflow.start_span(name="format", span_type="PARSER") as span:
        span.set_inputs({"docs": docs})
        prompt = f"{question}: {len(docs)} docs"
        span.set_outputs(prompt)
    return fake_llm(prompt, payload)


@mlflow.trace
def failing(x):
    raise ValueError(f"bad input {x}")


def test_trace_round_trip_keeps_spans_inputs_outputs_and_attributes(client, traced_experiment, no_client_warnings):
    result = app("why?", PAYLOAD)
    trace_id = mlflow.get_last_active_trace_id()
    trace = mlflow.get_trace(trace_id)
    assert trace is not None
    info = trace.info
    assert info.trace_id == trace_id
    assert info.experiment_id == traced_experiment
    assert info.state.value == "OK"
    assert info.tags["mlflow.traceName"] == "app"
    assert info.tags["mlflow.trace.spansLocation"] == "TRACKING_STORE"
    assert info.trace_metadata["mlflow.trace.tokenUsage"]
    assert json.loads(info.request_preview) == {"question": "why?", "payload": PAYLOAD}
    assert json.loads(info.response_preview) == result
    assert info.execution_duration is not None and info.execution_duration >= 0
    assert info.token_usage == {"input_tokens": 12, "output_tokens": 30, "total_tokens": 42}

    spans = {s.name: s for s in trace.data.spans}
    assert list(spans) == ["app", "retrieve", "format", "fake_llm"]
    root = spans["app"]
    assert root.parent_id is None
    assert all(spans[n].parent_id == root.span_id for n in ["retrieve", "format", "fake_llm"])
    assert root.inputs == {"question": "why?", "payload": PAYLOAD}
    assert root.outputs == result
    assert spans["fake_llm"].outputs == {"answer": "42", "echo": PAYLOAD}
    assert spans["retrieve"].attributes["k"] == 3
    assert spans["retrieve"].attributes["source"] == "docs"
    assert spans["retrieve"].span_type == "RETRIEVER"
    assert spans["format"].inputs == {"docs": [{"doc": "a", "score": 0.25}, {"doc": "b", "score": 0.75}]}
    assert spans["format"].outputs == "why?: 2 docs"
    events = spans["fake_llm"].events
    assert [(e.name, e.attributes) for e in events] == [("token", {"index": 1, "text": "hi"})]
    assert spans["fake_llm"].get_attribute("mlflow.chat.tokenUsage") == {"input_tokens": 12, "output_tokens": 30, "total_tokens": 42}
    for span in trace.data.spans:
        assert span.status.status_code == SpanStatusCode.OK
        assert span.start_time_ns <= span.end_time_ns

    # The same through the client's trace-info read and the batch read search_traces uses.
    assert trace_info(trace_id).tags["mlflow.traceName"] == "app"
    again = mlflow.search_traces(locations=[traced_experiment], return_type="list")
    assert [t.info.trace_id for t in again] == [trace_id]
    assert [s.to_dict() for s in again[0].data.spans] == [s.to_dict() for s in trace.data.spans]


def test_exceptions_make_an_error_trace_with_the_exception_event(traced_experiment, no_client_warnings):
    with pytest.raises(ValueError):
        failing(7)
    trace = mlflow.get_trace(mlflow.get_last_active_trace_id())
    assert trace.info.state.value == "ERROR"
    (span,) = trace.data.spans
    assert span.status.status_code == SpanStatusCode.ERROR
    assert "bad input 7" in span.status.description
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "bad input 7"
    assert "Traceback" in event.attributes["exception.stacktrace"]


def test_search_traces_filters_order_and_pages_into_pandas(client, traced_experiment, no_client_warnings):
    ids = []
    for i in range(5):
        app(f"q{i}", {"i": i})
        ids.append(mlflow.get_last_active_trace_id())
        mlflow.set_trace_tag(ids[-1], "parity", "even" if i % 2 == 0 else "odd")
        time.sleep(0.002)  # distinct request times, so the order below is defined
    with pytest.raises(ValueError):
        failing(1)
    error_id = mlflow.get_last_active_trace_id()

    df = mlflow.search_traces(locations=[traced_experiment])
    assert len(df) == 6
    assert {"trace_id", "state", "request_time", "execution_duration", "spans", "tags", "assessments"} <= set(df.columns)
    assert df["trace_id"].tolist() == [error_id] + ids[::-1]  # newest first

    def found(filter_string, **kw):
        return [t.info.trace_id for t in mlflow.search_traces(locations=[traced_experiment], filter_string=filter_string,
                                                               return_type="list", **kw)]

    assert found("status = 'ERROR'") == [error_id]
    assert found("trace.status = 'OK'") == ids[::-1]
    assert found("attributes.status != 'OK'") == [error_id]
    assert found("tags.parity = 'even'") == [ids[4], ids[2], ids[0]]
    assert found("tags.`parity` != 'even'") == [ids[3], ids[1]]
    assert found("tags.parity = 'odd' AND status = 'OK'") == [ids[3], ids[1]]
    assert found("tag.parity LIKE 'ev%'") == [ids[4], ids[2], ids[0]]
    assert found("tags.parity ILIKE 'EVEN'") == [ids[4], ids[2], ids[0]]
    assert found("tags.parity IS NULL") == [error_id]
    assert found("tags.parity IS NOT NULL") == ids[::-1]
    assert found(f"request_id IN ('{ids[1]}', '{ids[3]}')") == [ids[3], ids[1]]
    assert found("name = 'failing'") == [error_id]
    assert found("trace.name = 'app'") == ids[::-1]
    assert found("metadata.`mlflow.traceInputs` = '{\"x\": 1}'") == [error_id]
    first = trace_info(ids[0])
    assert found(f"timestamp_ms <= {first.request_time}") == [ids[0]]
    assert found(f"trace.timestamp_ms > {first.request_time}") == [error_id] + ids[:0:-1]
    assert found("execution_time_ms >= 0") == [error_id] + ids[::-1]
    assert found("tags.parity = 'none'") == []
    assert found("", order_by=["timestamp_ms ASC"]) == ids + [error_id]

    # Paging with the client's own page token.
    page1 = client.search_traces(locations=[traced_experiment], max_results=4, order_by=["timestamp_ms ASC"])
    assert [t.info.trace_id for t in page1] == ids[:4]
    assert page1.token
    page2 = client.search_traces(locations=[traced_experiment], max_results=4, order_by=["timestamp_ms ASC"], page_token=page1.token)
    assert [t.info.trace_id for t in page2] == [ids[4], error_id]
    assert not page2.token


def test_traces_in_a_run_are_found_by_run_id_and_linked_ones_too(client, traced_experiment, no_client_warnings):
    with mlflow.start_run() as run:
        app("in run", {})
        in_run = mlflow.get_last_active_trace_id()
    app("outside", {})
    outside = mlflow.get_last_active_trace_id()
    assert trace_info(in_run).trace_metadata["mlflow.sourceRun"] == run.info.run_id
    assert [t.info.trace_id for t in mlflow.search_traces(run_id=run.info.run_id, return_type="list")] == [in_run]
    client.link_traces_to_run([outside], run.info.run_id)
    linked = mlflow.search_traces(run_id=run.info.run_id, return_type="list")
    assert sorted(t.info.trace_id for t in linked) == sorted([in_run, outside])


def test_trace_tags_are_set_and_deleted(client, traced_experiment, no_client_warnings):
    app("tags", {})
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.set_trace_tag(trace_id, "reviewed", "yes")
    client.set_trace_tag(trace_id, "owner", "ünïcode ✓")
    tags = trace_info(trace_id).tags
    assert tags["reviewed"] == "yes" and tags["owner"] == "ünïcode ✓"
    mlflow.delete_trace_tag(trace_id, "reviewed")
    tags = trace_info(trace_id).tags
    assert "reviewed" not in tags and tags["owner"] == "ünïcode ✓"


def test_traces_are_deleted_by_ids_and_by_time(client, traced_experiment, no_client_warnings):
    ids = []
    for i in range(4):
        app(f"d{i}", {})
        ids.append(mlflow.get_last_active_trace_id())
        time.sleep(0.002)
    assert client.delete_traces(experiment_id=traced_experiment, trace_ids=[ids[0], "tr-" + uuid.uuid4().hex]) == 1
    with pytest.raises(mlflow.exceptions.MlflowException) as failure:
        trace_info(ids[0])
    assert failure.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    cutoff = trace_info(ids[2]).request_time
    assert client.delete_traces(experiment_id=traced_experiment, max_timestamp_millis=cutoff) == 2
    left = mlflow.search_traces(locations=[traced_experiment], return_type="list")
    assert [t.info.trace_id for t in left] == [ids[3]]


def test_feedback_and_expectations_are_logged_updated_and_deleted(client, traced_experiment, no_client_warnings):
    app("assess", {})
    trace_id = mlflow.get_last_active_trace_id()
    human = AssessmentSource(source_type="HUMAN", source_id="reviewer@example.com")
    feedback = mlflow.log_feedback(trace_id=trace_id, name="correct", value=True, rationale="matches the docs", source=human,
                                   metadata={"round": "1"})
    expectation = mlflow.log_expectation(trace_id=trace_id, name="expected_answer", value={"answer": "42", "alts": [4, 2]})
    score = mlflow.log_feedback(trace_id=trace_id, name="score", value=0.875)

    got = mlflow.get_assessment(trace_id, feedback.assessment_id)
    assert got.name == "correct" and got.value is True and got.rationale == "matches the docs"
    assert got.source.source_type == "HUMAN" and got.source.source_id == "reviewer@example.com"
    assert got.metadata == {"round": "1"}
    assert mlflow.get_assessment(trace_id, expectation.assessment_id).value == {"answer": "42", "alts": [4, 2]}
    assert mlflow.get_assessment(trace_id, score.assessment_id).value == 0.875

    updated = mlflow.update_assessment(trace_id=trace_id, assessment_id=feedback.assessment_id,
                                       assessment=Feedback(name="correct", value=False, rationale="re-checked"))
    assert updated.value is False
    got = mlflow.get_assessment(trace_id, feedback.assessment_id)
    assert got.value is False and got.rationale == "re-checked"

    # Overriding keeps the old one, marked invalid; deleting the override makes it valid again.
    override = mlflow.override_feedback(trace_id=trace_id, assessment_id=score.assessment_id, value=0.5, rationale="human says")
    assert mlflow.get_assessment(trace_id, score.assessment_id).valid is False
    assert mlflow.get_assessment(trace_id, override.assessment_id).overrides == score.assessment_id
    mlflow.delete_assessment(trace_id=trace_id, assessment_id=override.assessment_id)
    assert mlflow.get_assessment(trace_id, score.assessment_id).valid is True

    mlflow.delete_assessment(trace_id=trace_id, assessment_id=expectation.assessment_id)
    with pytest.raises(mlflow.exceptions.MlflowException) as failure:
        mlflow.get_assessment(trace_id, expectation.assessment_id)
    assert failure.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    # Assessments come back with the trace and in search results.
    trace = mlflow.get_trace(trace_id)
    assert sorted(a.name for a in trace.info.assessments) == ["correct", "score"]
    (row,) = mlflow.search_traces(locations=[traced_experiment], return_type="list")
    assert sorted(a.assessment_id for a in row.info.assessments) == sorted([feedback.assessment_id, score.assessment_id])


def test_an_opentelemetry_sdk_exporter_sends_spans_to_v1_traces(client, traced_experiment):
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    provider = TracerProvider(resource=Resource.create({"service.name": "compat-otel"}))
    exporter = OTLPSpanExporter(endpoint=SERVER_URI + "/v1/traces", headers={"x-mlflow-experiment-id": traced_experiment},
                                compression=Compression.Gzip)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("compat")
    with tracer.start_as_current_span("otel-root") as root:
        root.set_attribute("user.query", "hello")
        root.set_attribute("ratio", 0.5)
        root.set_attribute("count", 3)
        root.set_attribute("tags", ["a", "b"])
        with tracer.start_as_current_span("otel-child") as child:
            child.add_event("step", {"n": 1})
            child.set_status(Status(StatusCode.ERROR, "child failed"))
    provider.shutdown()

    trace_id = "tr-" + format(root.get_span_context().trace_id, "032x")
    trace = mlflow.get_trace(trace_id)
    assert trace is not None
    assert trace.info.experiment_id == traced_experiment
    assert trace.info.state.value == "OK"
    spans = {s.name: s for s in trace.data.spans}
    assert set(spans) == {"otel-root", "otel-child"}
    assert spans["otel-child"].parent_id == spans["otel-root"].span_id
    assert spans["otel-root"].attributes["user.query"] == "hello"
    assert spans["otel-root"].attributes["ratio"] == 0.5
    assert spans["otel-root"].attributes["count"] == 3
    assert spans["otel-root"].attributes["tags"] == ["a", "b"]
    assert spans["otel-child"].status.status_code == SpanStatusCode.ERROR
    assert [e.name for e in spans["otel-child"].events] == ["step"]
    found = mlflow.search_traces(locations=[traced_experiment], return_type="list")
    assert [t.info.trace_id for t in found] == [trace_id]


def test_token_usage_and_cost_are_summed_from_the_spans_as_mlflow_sums_them(client, traced_experiment, no_client_warnings):
    """A span's `mlflow.chat.tokenUsage` (and `mlflow.llm.cost`) add up to the trace's: with the mlflow client, and with any
    OpenTelemetry exporter (no StartTraceV3: the server sums them), a span whose ancestor has usage not counted again."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    @mlflow.trace(span_type="LLM")
    def model_call(question):
        mlflow.get_current_active_span().set_attribute("mlflow.chat.tokenUsage", {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15})
        return "42"

    @mlflow.trace(span_type="CHAIN")
    def app(question):
        return model_call(question) + model_call(question)

    app("why?")
    trace_id = mlflow.get_last_active_trace_id()
    usage = {"input_tokens": 20, "output_tokens": 10, "total_tokens": 30}
    assert mlflow.get_trace(trace_id).info.token_usage == usage

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=SERVER_URI + "/v1/traces",
                                                                     headers={"x-mlflow-experiment-id": traced_experiment})))
    tracer = provider.get_tracer("compat")
    with tracer.start_as_current_span("agent") as root:
        with tracer.start_as_current_span("step") as step:
            step.set_attribute("mlflow.chat.tokenUsage", json.dumps({"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}))
            step.set_attribute("mlflow.llm.cost", json.dumps({"input_cost": 0.25, "output_cost": 0.5, "total_cost": 0.75}))
            with tracer.start_as_current_span("inner") as inner:
                # Inside a span that has usage: the same tokens, reported twice by two integrations.
                inner.set_attribute("mlflow.chat.tokenUsage", json.dumps({"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}))
        with tracer.start_as_current_span("tool") as tool:
            tool.set_attribute("mlflow.chat.tokenUsage", json.dumps({"input_tokens": 1, "output_tokens": 2, "total_tokens": 3,
                                                                      "cache_read_input_tokens": 4}))
    provider.shutdown()
    otel_id = "tr-" + format(root.get_span_context().trace_id, "032x")
    info = trace_info(otel_id)
    assert info.token_usage == {"input_tokens": 8, "output_tokens": 5, "total_tokens": 13, "cache_read_input_tokens": 4}
    assert json.loads(info.trace_metadata["mlflow.trace.cost"]) == {"input_cost": 0.25, "output_cost": 0.5, "total_cost": 0.75}
    assert search_ids(traced_experiment, "metadata.`mlflow.trace.tokenUsage` = "
                      """'{"input_tokens": 8, "output_tokens": 5, "total_tokens": 13, "cache_read_input_tokens": 4}'""") == [otel_id]


def _genai_trace(experiment_id):
    """An app instrumented with OpenTelemetry alone, writing the GenAI semantic conventions: an agent span, a chat
    call (current keys), an older instrumentation's call (Traceloop's `gen_ai.usage.prompt_tokens`, `gen_ai.system`)
    and a call that reports only its input tokens. Returns the MLflow trace id."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=SERVER_URI + "/v1/traces",
                                                                     headers={"x-mlflow-experiment-id": experiment_id})))
    tracer = provider.get_tracer("compat-genai")
    with tracer.start_as_current_span("invoke_agent helper") as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        with tracer.start_as_current_span("chat gpt-x") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.provider.name", "openai")
            chat.set_attribute("gen_ai.request.model", "gpt-x")
            chat.set_attribute("gen_ai.response.model", "gpt-x-2026")
            chat.set_attribute("gen_ai.usage.input_tokens", 12)
            chat.set_attribute("gen_ai.usage.output_tokens", 30)
            chat.set_attribute("gen_ai.usage.cache_read.input_tokens", 4)
            chat.set_attribute("gen_ai.input.messages", json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]))
            chat.set_attribute("gen_ai.output.messages", json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "42"}]}]))
        with tracer.start_as_current_span("completion") as old:
            old.set_attribute("gen_ai.system", "anthropic")
            old.set_attribute("gen_ai.request.model", "claude-x")
            old.set_attribute("gen_ai.usage.prompt_tokens", 5)
            old.set_attribute("gen_ai.usage.completion_tokens", "6")
        with tracer.start_as_current_span("embed") as embed:
            embed.set_attribute("gen_ai.operation.name", "embeddings")
            embed.set_attribute("gen_ai.usage.input_tokens", 100)
    provider.shutdown()
    return "tr-" + format(root.get_span_context().trace_id, "032x")


def test_genai_semantic_convention_attributes_become_mlflow_token_usage_model_and_type(client, traced_experiment, no_client_warnings):
    """MLflow's store translates the OpenTelemetry GenAI attributes of the spans it receives (`gen_ai.usage.*`, the
    request/response model, provider, operation name, messages) into its own: token usage on the span and the
    trace, model and provider for the span metrics, the span type, inputs and outputs. Cairn adds the same."""
    from mlflow.entities.trace_metrics import AggregationType, MetricAggregation, MetricViewType

    trace_id = _genai_trace(traced_experiment)
    usage = {"input_tokens": 117, "output_tokens": 36, "total_tokens": 53, "cache_read_input_tokens": 4}
    assert trace_info(trace_id).token_usage == usage
    spans = {s.name: s for s in mlflow.get_trace(trace_id).data.spans}
    chat, old, embed, root = spans["chat gpt-x"], spans["completion"], spans["embed"], spans["invoke_agent helper"]
    assert chat.get_attribute("mlflow.chat.tokenUsage") == {"input_tokens": 12, "output_tokens": 30, "total_tokens": 42,
                                                             "cache_read_input_tokens": 4}
    assert old.get_attribute("mlflow.chat.tokenUsage") == {"input_tokens": 5, "output_tokens": 6, "total_tokens": 11}
    assert embed.get_attribute("mlflow.chat.tokenUsage") == {"input_tokens": 100}
    assert root.get_attribute("mlflow.chat.tokenUsage") is None
    assert (chat.get_attribute("mlflow.llm.model"), chat.get_attribute("mlflow.llm.provider")) == ("gpt-x-2026", "openai")
    assert (old.get_attribute("mlflow.llm.model"), old.get_attribute("mlflow.llm.provider")) == ("claude-x", "anthropic")
    assert [root.span_type, chat.span_type, embed.span_type] == ["AGENT", "CHAT_MODEL", "EMBEDDING"]
    assert chat.inputs == [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    assert chat.outputs == [{"role": "assistant", "parts": [{"type": "text", "content": "42"}]}]
    # The untranslated attributes stay as sent.
    assert chat.get_attribute("gen_ai.usage.input_tokens") == 12
    assert search_ids(traced_experiment, "metadata.`mlflow.trace.tokenUsage` = "
                      """'{"input_tokens": 117, "output_tokens": 36, "total_tokens": 53, "cache_read_input_tokens": 4}'""") == [trace_id]

    store = client._tracking_client.store

    def metric(view, name, aggregation, dimensions=None):
        result = store.query_trace_metrics(experiment_ids=[traced_experiment], view_type=view, metric_name=name,
                                           aggregations=[MetricAggregation(aggregation)], dimensions=dimensions)
        return [(p.dimensions, p.values) for p in result]

    assert metric(MetricViewType.TRACES, "total_tokens", AggregationType.SUM) == [({}, {"SUM": 53.0})]
    assert metric(MetricViewType.TRACES, "cache_read_input_tokens", AggregationType.SUM) == [({}, {"SUM": 4.0})]
    assert metric(MetricViewType.SPANS, "span_count", AggregationType.COUNT, ["span_model_name", "span_model_provider"]) == [
        ({"span_model_name": "claude-x", "span_model_provider": "anthropic"}, {"COUNT": 1.0}),
        ({"span_model_name": "gpt-x-2026", "span_model_provider": "openai"}, {"COUNT": 1.0})]


def test_span_metrics_read_model_names_and_costs_as_mlflow_reads_them(client, traced_experiment, no_client_warnings):
    """A model name or cost the client dumped to JSON text once more (an exporter writing `json.dumps(...)`) is read as
    MLflow's store reads it: unwrapped."""
    from mlflow.entities.trace_metrics import AggregationType, MetricAggregation, MetricViewType
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    @mlflow.trace(span_type="LLM")
    def model_call():
        span = mlflow.get_current_active_span()
        span.set_attribute("mlflow.llm.model", "gpt-x")
        span.set_attribute("mlflow.llm.cost", {"total_cost": 0.5})
        return 1

    model_call()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=SERVER_URI + "/v1/traces",
                                                                     headers={"x-mlflow-experiment-id": traced_experiment})))
    with provider.get_tracer("compat").start_as_current_span("dumped") as span:
        span.set_attribute("mlflow.llm.model", json.dumps("otel-m"))
        span.set_attribute("mlflow.llm.cost", json.dumps({"total_cost": 0.25}))
    with provider.get_tracer("compat").start_as_current_span("plain") as span:
        span.set_attribute("mlflow.llm.model", "plain-m")
    provider.shutdown()

    store = client._tracking_client.store

    def metric(name, aggregation, dimensions=None):
        result = store.query_trace_metrics(experiment_ids=[traced_experiment], view_type=MetricViewType.SPANS, metric_name=name,
                                           aggregations=[MetricAggregation(aggregation)], dimensions=dimensions)
        return [(p.dimensions, p.values) for p in result]

    assert metric("span_count", AggregationType.COUNT, ["span_model_name"]) == [
        ({"span_model_name": "gpt-x"}, {"COUNT": 1.0}), ({"span_model_name": "otel-m"}, {"COUNT": 1.0}),
        ({"span_model_name": "plain-m"}, {"COUNT": 1.0})]
    assert metric("total_cost", AggregationType.SUM) == [({}, {"SUM": 0.75})]


def test_otlp_json_bodies_with_hex_ids_are_accepted(rest, traced_experiment):
    trace_hex = uuid.uuid4().hex
    start = time.time_ns()
    body = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [{
        "traceId": trace_hex, "spanId": "00f067aa0ba902b7", "name": "json-span", "kind": 1,
        "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 5_000_000),
        "attributes": [{"key": "model", "value": {"stringValue": "m"}}, {"key": "n", "value": {"intValue": "7"}}],
        "status": {"code": 1}}]}]}]}
    raw = gzip.compress(json.dumps(body).encode())
    status, _ = rest("POST", "/v1/traces", data=raw, headers={
        "Content-Type": "application/json", "Content-Encoding": "gzip", "x-mlflow-experiment-id": traced_experiment})
    assert status == 200
    trace = mlflow.get_trace("tr-" + trace_hex)
    (span,) = trace.data.spans
    assert span.name == "json-span"
    assert span.span_id == "00f067aa0ba902b7"
    assert span.attributes["model"] == "m" and span.attributes["n"] == 7
    assert trace.info.execution_duration == 5


def test_bad_trace_requests_get_mlflow_errors_and_change_nothing(rest, client, traced_experiment):
    app("keep", {})
    trace_id = mlflow.get_last_active_trace_id()
    before = rest("GET", V3 + "traces/get", params={"trace_id": trace_id})

    def error(method, path, **kw):
        status, body = rest(method, path, **kw)
        return status, body.get("error_code") if isinstance(body, dict) else body

    assert error("GET", V3 + "traces/get", params={"trace_id": "tr-" + uuid.uuid4().hex}) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert error("GET", V3 + "traces/get") == (400, "INVALID_PARAMETER_VALUE")
    assert error("GET", V3 + "traces/tr-nope") == (404, "RESOURCE_DOES_NOT_EXIST")
    assert error("POST", V3 + "traces", json={}) == (400, "INVALID_PARAMETER_VALUE")
    assert error("POST", V3 + "traces/search", json={}) == (400, "INVALID_PARAMETER_VALUE")
    locations = [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": traced_experiment}}]
    assert error("POST", V3 + "traces/search", json={"locations": locations, "filter": "foo.bar = 'x'"}) == (400, "INVALID_PARAMETER_VALUE")
    assert error("POST", V3 + "traces/search", json={"locations": locations, "filter": "tags.x = 1"}) == (400, "INVALID_PARAMETER_VALUE")
    assert error("POST", V3 + "traces/search", json={"locations": locations, "order_by": ["bogus DESC"]}) == (400, "INVALID_PARAMETER_VALUE")
    assert error("POST", V3 + "traces/search", json={"locations": locations, "max_results": 100000}) == (400, "INVALID_PARAMETER_VALUE")
    assert error("PATCH", f"traces/{trace_id}/tags", json={"value": "v"}) == (400, "INVALID_PARAMETER_VALUE")
    assert error("DELETE", f"traces/{trace_id}/tags", json={"key": "absent"}) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert error("POST", "traces/delete-traces", json={"experiment_id": traced_experiment}) == (400, "INVALID_PARAMETER_VALUE")
    assert error("POST", "traces/delete-traces", json={"experiment_id": traced_experiment, "max_timestamp_millis": 1,
                                                         "request_ids": [trace_id]}) == (400, "INVALID_PARAMETER_VALUE")
    assert error("POST", "traces/delete-traces", json={"max_timestamp_millis": 1}) == (400, "INVALID_PARAMETER_VALUE")
    assert error("GET", V3 + f"traces/{trace_id}/assessments/a-nope") == (404, "RESOURCE_DOES_NOT_EXIST")
    no_value = {"assessment": {"assessment_name": "x", "trace_id": trace_id, "source": {"source_type": "HUMAN", "source_id": "me"}}}
    assert error("POST", V3 + f"traces/{trace_id}/assessments", json=no_value) == (400, "INVALID_PARAMETER_VALUE")
    assert error("POST", V3 + "traces/tr-nope/assessments",
                 json={"assessment": {"assessment_name": "x", "trace_id": "tr-nope", "feedback": {"value": 1}}}) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert error("POST", "/v1/traces", data=b"\x00", headers={"Content-Type": "text/plain", "x-mlflow-experiment-id": traced_experiment})[0] == 400
    assert error("POST", "/v1/traces", data=b"", headers={"Content-Type": "application/x-protobuf",
                                                           "x-mlflow-experiment-id": traced_experiment})[0] == 400
    assert error("POST", "/v1/traces", data=b"{not json", headers={"Content-Type": "application/json",
                                                                    "x-mlflow-experiment-id": traced_experiment})[0] == 400
    start_unknown = {"trace": {"trace_info": {"trace_id": "tr-" + uuid.uuid4().hex, "request_time": "2026-01-01T00:00:00Z", "state": "OK",
                                              "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "987654"}}}}}
    assert error("POST", V3 + "traces", json=start_unknown) == (404, "RESOURCE_DOES_NOT_EXIST")

    assert rest("GET", V3 + "traces/get", params={"trace_id": trace_id}) == before
    assert [t.info.trace_id for t in mlflow.search_traces(locations=[traced_experiment], return_type="list")] == [trace_id]


def test_genai_evaluate_with_a_custom_scorer_logs_traces_assessments_and_metrics(client, traced_experiment, no_client_warnings):
    from mlflow.genai.scorers import scorer

    @mlflow.trace
    def predict_fn(question):
        return "Paris" if "France" in question else "unknown"

    @scorer
    def exact_match(outputs, expectations):
        return outputs == expectations["expected_response"]

    data = [
        {"inputs": {"question": "Capital of France?"}, "expectations": {"expected_response": "Paris"}},
        {"inputs": {"question": "Capital of Spain?"}, "expectations": {"expected_response": "Madrid"}},
    ]
    result = mlflow.genai.evaluate(data=data, predict_fn=predict_fn, scorers=[exact_match])
    assert result.metrics["exact_match/mean"] == 0.5
    run = client.get_run(result.run_id)
    assert run.data.metrics["exact_match/mean"] == 0.5
    assert run.info.experiment_id == traced_experiment

    traces = mlflow.search_traces(run_id=result.run_id, return_type="list")
    assert len(traces) == 2
    by_question = {json.loads(t.info.request_preview)["question"]: t for t in traces}
    assert set(by_question) == {"Capital of France?", "Capital of Spain?"}
    for question, expected in [("Capital of France?", True), ("Capital of Spain?", False)]:
        trace = by_question[question]
        feedback = {a.name: a for a in trace.info.assessments if a.feedback is not None}
        assert feedback["exact_match"].value is expected
        expectations = {a.name: a.value for a in trace.info.assessments if a.expectation is not None}
        assert expectations == {"expected_response": "Paris" if expected else "Madrid"}
        (span,) = trace.data.spans
        assert span.inputs == {"question": question}


def test_the_v2_trace_calls_older_clients_make_still_work(rest, traced_experiment):
    from mlflow.entities.trace_status import TraceStatus
    from mlflow.store.tracking.rest_store import RestStore
    from mlflow.utils.rest_utils import MlflowHostCreds

    store = RestStore(lambda: MlflowHostCreds(SERVER_URI))
    started = store.deprecated_start_trace_v2(experiment_id=traced_experiment, timestamp_ms=1_700_000_000_000,
                                              request_metadata={"mlflow.traceInputs": '{"x": 1}'}, tags={"stage": "v2"})
    assert len(started.request_id) == 32  # a v2 id: 32 hex digits, no "tr-"
    assert started.status.value == "IN_PROGRESS"
    assert started.tags["mlflow.artifactLocation"].endswith(f"/traces/{started.request_id}/artifacts")
    ended = store.deprecated_end_trace_v2(request_id=started.request_id, timestamp_ms=1_700_000_000_250, status=TraceStatus.OK,
                                          request_metadata={"mlflow.traceOutputs": "2"}, tags={"done": "yes"})
    assert ended.status.value == "OK"
    assert ended.execution_time_ms == 250
    assert ended.request_metadata["mlflow.traceInputs"] == '{"x": 1}' and ended.request_metadata["mlflow.traceOutputs"] == "2"
    assert ended.tags["stage"] == "v2" and ended.tags["done"] == "yes"

    status, body = rest("GET", f"traces/{started.request_id}/info")
    assert status == 200 and body["trace_info"]["execution_time_ms"] == 250
    status, body = rest("GET", "traces", params={"experiment_ids": [traced_experiment], "filter": "tags.done = 'yes'"})
    assert status == 200 and [t["request_id"] for t in body["traces"]] == [started.request_id]


def test_prompt_versions_are_linked_to_a_trace(rest, traced_experiment):
    app("prompted", {})
    trace_id = mlflow.get_last_active_trace_id()
    body = {"trace_id": trace_id, "prompt_versions": [{"name": "qa-prompt", "version": "2"}]}
    assert rest("POST", "traces/link-prompts", json=body)[0] == 200
    assert rest("POST", "traces/link-prompts", json=body)[0] == 200  # linking again adds nothing
    assert rest("POST", "traces/link-prompts", json={"trace_id": trace_id})[0] == 400
    assert rest("POST", "traces/link-prompts", json={**body, "trace_id": "tr-" + uuid.uuid4().hex})[0] == 404


def test_search_traces_by_span_fields_and_attributes(traced_experiment, no_client_warnings):
    app("first", {"i": 0})
    a = mlflow.get_last_active_trace_id()
    time.sleep(0.002)
    with pytest.raises(ValueError):
        failing(1)
    b = mlflow.get_last_active_trace_id()
    time.sleep(0.002)
    app("second", {"i": 2})
    c = mlflow.get_last_active_trace_id()

    def found(filter_string):
        return search_ids(traced_experiment, filter_string)

    assert found("span.name = 'retrieve'") == [c, a]
    assert found("span.type = 'LLM'") == [c, a]
    assert found("span.type != 'LLM'") == [c, b, a]  # some other span of each trace
    assert found("span.status = 'ERROR'") == [b]
    assert found("span.status = 'OK' AND span.name = 'failing'") == []  # both on one span
    assert found("span.name = 'failing' AND span.status = 'ERROR'") == [b]
    assert found("span.name = 'retrieve' AND span.type = 'LLM'") == []
    assert found("span.name IN ('failing', 'format')") == [c, b, a]
    assert found("span.name NOT IN ('app', 'retrieve', 'format', 'fake_llm')") == [b]
    assert found("span.name LIKE 'fake%'") == [c, a]
    assert found("span.name ILIKE 'FAKE%' AND status = 'OK'") == [c, a]
    assert found("span.attributes.source LIKE '%docs%'") == [c, a]
    assert found("span.attributes.`mlflow.spanType` LIKE '%RETRIEVER%'") == [c, a]
    assert found("span.attributes.mlflow.spanType ILIKE '%retriever%'") == [c, a]
    assert found("span.attributes.source = 'docs'") == []  # MLflow compares the whole content with '%"source"docs%'
    assert found("span.content ILIKE '%BAD INPUT 1%'") == [b]
    assert found("span.content LIKE '%second%' AND span.name = 'app'") == [c]
    assert found("trace.text LIKE '%first%'") == [a]
    assert found("attributes.text ILIKE '%FIRST%'") == [a]


def test_rlike_finds_a_regular_expression_anywhere_case_sensitively(rest, traced_experiment, no_client_warnings):
    app("first", {"i": 0})
    a = mlflow.get_last_active_trace_id()
    mlflow.set_trace_tag(a, "model", "gpt-4o-mini")
    time.sleep(0.002)
    with pytest.raises(ValueError):
        failing(1)
    b = mlflow.get_last_active_trace_id()
    mlflow.set_trace_tag(b, "model", "Claude-3")
    source = AssessmentSource(source_type="HUMAN", source_id="reviewer")
    mlflow.log_feedback(trace_id=a, name="tone", value="friendly", source=source)
    mlflow.log_feedback(trace_id=b, name="tone", value="curt", source=source)

    def found(filter_string):
        return search_ids(traced_experiment, filter_string)

    assert found("tags.model RLIKE 'gpt-[0-9]'") == [a]
    assert found("tags.model RLIKE 'gpt-\\do'") == [a]  # backslashes are kept as written
    assert found("tags.model RLIKE '^gpt'") == [a]
    assert found("tags.model RLIKE 'mini$'") == [a]
    assert found("tags.model RLIKE 'claude'") == []  # case-sensitive
    assert found("tags.model RLIKE '(?i)claude'") == [b]
    assert found("tags.model RLIKE 'o|3'") == [b, a]
    assert found("tags.model RLIKE '^o'") == []  # anchored at the start of the value
    assert found("trace.status RLIKE 'ERR'") == [b]
    assert found("name RLIKE '^fail'") == [b]
    assert found(f"request_id RLIKE '{a[-6:]}$'") == [a]
    assert found("metadata.`mlflow.traceInputs` RLIKE '\"x\": 1'") == [b]
    assert found("span.name RLIKE '^fake_'") == [a]
    assert found("span.type RLIKE 'RETRIEV'") == [a]
    assert found("span.status RLIKE 'ERR' AND span.name RLIKE 'fail'") == [b]
    assert found("span.attributes.source RLIKE 'do'") == [a]
    assert found("span.attributes.source RLIKE '^docs$'") == [a]
    assert found("span.attributes.source RLIKE '^ocs'") == []
    assert found("feedback.tone RLIKE 'friend'") == [a]
    assert found("feedback.tone RLIKE '^\"c'") == [b]  # the value as JSON text

    locations = [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": traced_experiment}}]

    def error(filter_string):
        status, answer = rest("POST", V3 + "traces/search", json={"locations": locations, "filter": filter_string})
        return status, answer.get("error_code") if isinstance(answer, dict) else answer

    bad = (400, "INVALID_PARAMETER_VALUE")
    assert error("timestamp_ms RLIKE '1'") == bad
    assert error("span.content RLIKE 'x'") == bad
    assert error("issue.id RLIKE 'x'") == bad
    assert error("tags.model RLIKE 5") == bad


@pytest.mark.cairn_only
def test_an_rlike_pattern_that_does_not_compile_is_refused(rest, traced_experiment):
    """MLflow's SQLite store matches nothing with it (its REGEXP function swallows the error); on PostgreSQL
    MLflow answers 400 BAD_REQUEST. Cairn answers that 400 on both engines rather than an empty page."""
    locations = [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": traced_experiment}}]
    status, answer = rest("POST", V3 + "traces/search", json={"locations": locations, "filter": "tags.model RLIKE '('"})
    assert (status, answer["error_code"]) == (400, "BAD_REQUEST")
    assert "regular expression" in answer["message"]


def test_search_traces_by_feedback_and_expectations(client, traced_experiment, no_client_warnings):
    ids = []
    for i in range(3):
        app(f"q{i}", {})
        ids.append(mlflow.get_last_active_trace_id())
        time.sleep(0.002)
    a, b, c = ids
    source = AssessmentSource(source_type="HUMAN", source_id="reviewer")
    mlflow.log_feedback(trace_id=a, name="correct", value=True, source=source)
    wrong = mlflow.log_feedback(trace_id=c, name="correct", value=False, source=source)
    mlflow.log_feedback(trace_id=a, name="score", value=0.9, source=source)
    mlflow.log_feedback(trace_id=c, name="score", value=4, source=source)
    mlflow.log_feedback(trace_id=b, name="score", value="high", source=source)
    mlflow.log_feedback(trace_id=c, name="tone", value="friendly", source=source)
    mlflow.log_expectation(trace_id=a, name="expected", value="42", source=source)

    def found(filter_string):
        return search_ids(traced_experiment, filter_string)

    assert found("feedback.correct = 'true'") == [a]
    assert found("feedback.correct = 'false'") == [c]
    assert found("feedback.correct != 'true'") == [c]
    assert found("feedback.score > 0.5") == [c, a]
    assert found("feedback.score > 1") == [c]
    assert found("feedback.score <= 0.9") == [a]  # 'high' is not a number
    assert found("feedback.score = 'high'") == [b]
    assert found("feedback.score = '4.0'") == [c]  # the client sends numbers as doubles
    assert found("feedback.score = '4'") == []
    assert found("feedback.tone = 'friendly'") == [c]
    assert found("feedback.tone LIKE '%friend%'") == [c]
    assert found("feedback.tone ILIKE '%FRIEND%' AND feedback.correct = 'false'") == [c]
    assert found("feedback.tone IS NOT NULL") == [c]
    assert found("feedback.tone IS NULL") == [b, a]
    assert found("expectation.expected = '42'") == [a]
    assert found("expectation.expected IS NULL") == [c, b]
    assert found("feedback.expected IS NOT NULL") == []  # an expectation is not feedback

    # An overridden feedback no longer counts; its override does.
    mlflow.override_feedback(trace_id=c, assessment_id=wrong.assessment_id, value=True, rationale="fixed", source=source)
    assert found("feedback.correct = 'true'") == [c, a]
    assert found("feedback.correct = 'false'") == []


def test_bad_span_and_assessment_filters_get_mlflow_errors(rest, traced_experiment):
    app("keep", {})
    locations = [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": traced_experiment}}]

    def error(filter_string=None, order_by=None):
        body = {"locations": locations}
        if filter_string is not None:
            body["filter"] = filter_string
        if order_by is not None:
            body["order_by"] = order_by
        status, answer = rest("POST", V3 + "traces/search", json=body)
        return status, answer.get("error_code") if isinstance(answer, dict) else answer

    bad = (400, "INVALID_PARAMETER_VALUE")
    assert error("span.bogus = 'x'") == bad
    assert error("span.attributes. = 'x'") == bad
    assert error("span.content = 'x'") == bad
    assert error("span.name > 'x'") == bad
    assert error("span.name = 5") == bad
    assert error("trace.text = 'x'") == bad
    assert error("text LIKE '%x%'") == bad  # a keyword to MLflow's SQL parser: use trace.text
    assert error("feedback.score > 'x'") == bad
    assert error("feedback.score = 5") == bad
    assert error("feedback.score IN ('a')") == bad
    assert error("issue.id != 'x'") == bad
    assert error("span.attributes.source IN ('docs')") == (400, "BAD_REQUEST")
    assert error(order_by=["span.name"]) == bad
    assert error(order_by=["feedback.score DESC"]) == bad
    assert error("prompt LIKE 'p/1'") == bad
    assert error("prompt = 'no-version'") == bad
    assert error("issue.id = 'x'") == (200, None)


def test_get_trace_artifact_answers_the_spans_as_mlflow_keeps_them(rest, traced_experiment, no_client_warnings):
    import requests

    app("download", {"i": 1})
    trace_id = mlflow.get_last_active_trace_id()
    trace = mlflow.get_trace(trace_id)
    for prefix in ["/ajax-api/2.0/mlflow", "/ajax-api/3.0/mlflow"]:
        resp = requests.get(SERVER_URI + prefix + "/get-trace-artifact", params={"request_id": trace_id}, timeout=60)
        assert resp.status_code == 200
        assert resp.headers["Content-Disposition"] == "attachment; filename=traces.json"
        assert resp.json() == {"spans": [s.to_dict() for s in trace.data.spans]}
    assert rest("GET", "/ajax-api/2.0/mlflow/get-trace-artifact")[0] == 400
    assert rest("GET", "/ajax-api/2.0/mlflow/get-trace-artifact", params={"request_id": "tr-" + uuid.uuid4().hex})[0] == 404


def test_filter_correlation_counts_traces_and_computes_npmi(rest, traced_experiment, no_client_warnings):
    from mlflow.tracing.client import TracingClient

    for i in range(4):
        app(f"c{i}", {})
        mlflow.set_trace_tag(mlflow.get_last_active_trace_id(), "parity", "even" if i % 2 == 0 else "odd")
    with pytest.raises(ValueError):
        failing(3)
    tracing = TracingClient(SERVER_URI)
    result = tracing.calculate_trace_filter_correlation(experiment_ids=[traced_experiment], filter_string1="status = 'OK'",
                                                        filter_string2="tags.parity = 'even'")
    assert (result.total_count, result.filter1_count, result.filter2_count, result.joint_count) == (5, 4, 2, 2)
    assert result.npmi == pytest.approx(0.24352920263396993)
    assert result.npmi_smoothed == pytest.approx(0.14971617401047535)
    never = tracing.calculate_trace_filter_correlation(experiment_ids=[traced_experiment], filter_string1="status = 'ERROR'",
                                                       filter_string2="span.name = 'retrieve'")
    assert (never.filter1_count, never.filter2_count, never.joint_count, never.npmi) == (1, 4, 0, -1.0)
    assert never.npmi_smoothed == pytest.approx(-0.39780193962354293)
    based = tracing.calculate_trace_filter_correlation(experiment_ids=[traced_experiment], filter_string1="tags.parity = 'odd'",
                                                       filter_string2="span.type = 'LLM'", base_filter="status = 'OK'")
    assert (based.total_count, based.filter1_count, based.filter2_count, based.joint_count, based.npmi) == (4, 2, 4, 2, 0.0)
    status, body = rest("POST", V3 + "traces/calculate-filter-correlation",
                        json={"experiment_ids": [traced_experiment], "filter_string1": "tags.none = 'x'", "filter_string2": "status = 'OK'"})
    assert status == 200 and body["filter1_count"] == 0 and "npmi" not in body  # undefined: left out, as MLflow does
    bad = {"experiment_ids": [traced_experiment], "filter_string1": "bogus = 1", "filter_string2": "status = 'OK'"}
    assert rest("POST", V3 + "traces/calculate-filter-correlation", json=bad)[1]["error_code"] == "INVALID_PARAMETER_VALUE"
    missing = {"experiment_ids": [traced_experiment], "filter_string1": "status = 'OK'"}
    assert rest("POST", V3 + "traces/calculate-filter-correlation", json=missing)[1]["error_code"] == "INVALID_PARAMETER_VALUE"


def _metric_traces(client, experiment_id):
    """Three traces with chosen times: two `app` traces (100 ms, 300 ms) whose `llm` child span carries a model,
    a provider, a cost and token usage, and one `other` ERROR trace (200 ms) an hour and a half later."""
    base = 1767225600000  # 2026-01-01T00:00:00Z
    ms = 1_000_000
    ids = []
    for offset, duration, name, cost, tokens in [(0, 100, "app", 1.5, 10), (30 * 60_000, 300, "app", 2.0, 30), (90 * 60_000, 200, "other", None, None)]:
        start = (base + offset) * ms
        root = client.start_trace(name, inputs={"q": name}, experiment_id=experiment_id, start_time_ns=start)
        if cost is not None:
            child = client.start_span("llm", trace_id=root.trace_id, parent_id=root.span_id, span_type="LLM", start_time_ns=start + 10 * ms,
                                      attributes={"mlflow.llm.model": "gpt-x", "mlflow.llm.provider": "openai",
                                                  "mlflow.llm.cost": {"input_cost": cost / 3, "output_cost": cost * 2 / 3, "total_cost": cost},
                                                  "mlflow.chat.tokenUsage": {"input_tokens": tokens, "output_tokens": 2, "total_tokens": tokens + 2}})
            client.end_span(root.trace_id, child.span_id, outputs={"a": 1}, end_time_ns=start + (10 + duration // 2) * ms)
        client.end_trace(root.trace_id, outputs={"a": 1}, status="OK" if cost is not None else "ERROR", end_time_ns=start + duration * ms)
        ids.append(root.trace_id)
    source = AssessmentSource(source_type="HUMAN", source_id="reviewer")
    mlflow.log_feedback(trace_id=ids[0], name="correct", value=True, source=source)
    mlflow.log_feedback(trace_id=ids[1], name="correct", value=False, source=source)
    mlflow.log_feedback(trace_id=ids[1], name="score", value=4, source=source)
    mlflow.log_feedback(trace_id=ids[2], name="score", value=0.5, source=source)
    mlflow.log_expectation(trace_id=ids[2], name="answer", value="42", source=source)
    return base, ids


def test_trace_metrics_aggregate_traces_spans_and_assessments_as_mlflow(client, traced_experiment, no_client_warnings):
    from mlflow.entities.trace_metrics import AggregationType, MetricAggregation, MetricViewType

    base, ids = _metric_traces(client, traced_experiment)
    store = client._tracking_client.store

    def points(view, metric, aggregations, **kw):
        aggs = [MetricAggregation(AggregationType.PERCENTILE, p) if isinstance(p, float) else MetricAggregation(p) for p in aggregations]
        result = store.query_trace_metrics(experiment_ids=[traced_experiment], view_type=view, metric_name=metric, aggregations=aggs, **kw)
        assert result.token is None
        return [(p.metric_name, p.dimensions, p.values) for p in result]

    T, S, A = MetricViewType.TRACES, MetricViewType.SPANS, MetricViewType.ASSESSMENTS
    C, SUM, AVG, MIN, MAX = AggregationType.COUNT, AggregationType.SUM, AggregationType.AVG, AggregationType.MIN, AggregationType.MAX
    assert points(T, "trace_count", [C]) == [("trace_count", {}, {"COUNT": 3.0})]
    assert points(T, "trace_count", [C], dimensions=["trace_name", "trace_status"]) == [
        ("trace_count", {"trace_name": "app", "trace_status": "OK"}, {"COUNT": 2.0}),
        ("trace_count", {"trace_name": "other", "trace_status": "ERROR"}, {"COUNT": 1.0})]
    assert points(T, "latency", [AVG, MIN, MAX, 50.0, 90.0]) == [
        ("latency", {}, {"AVG": 200.0, "MIN": 100.0, "MAX": 300.0, "P50.0": 200.0, "P90.0": 280.0})]
    assert points(T, "latency", [AVG], dimensions=["trace_name"], filters=["trace.status = 'OK'"]) == [("latency", {"trace_name": "app"}, {"AVG": 200.0})]
    assert points(T, "total_tokens", [SUM, AVG]) == [("total_tokens", {}, {"SUM": 44.0, "AVG": 22.0})]
    assert points(T, "input_tokens", [MAX], dimensions=["trace_name"]) == [("input_tokens", {"trace_name": "app"}, {"MAX": 30.0})]
    assert points(T, "session_count", [C]) == [("session_count", {}, {"COUNT": 0.0})]
    assert points(T, "trace_count", [C], time_interval_seconds=3600, start_time_ms=base, end_time_ms=base + 3 * 3_600_000) == [
        ("trace_count", {"time_bucket": "2026-01-01T00:00:00+00:00"}, {"COUNT": 2.0}),
        ("trace_count", {"time_bucket": "2026-01-01T01:00:00+00:00"}, {"COUNT": 1.0})]
    assert points(T, "trace_count", [C], start_time_ms=base + 1, end_time_ms=base + 30 * 60_000) == [("trace_count", {}, {"COUNT": 1.0})]
    assert points(T, "trace_count", [C], filters=["trace.tag.none = 'x'"]) == [("trace_count", {}, {"COUNT": 0.0})]
    assert points(T, "latency", [AVG], filters=["trace.tag.none = 'x'"]) == []
    assert points(T, "trace_count", [C], dimensions=["trace_name"], max_results=1) == [("trace_count", {"trace_name": "app"}, {"COUNT": 2.0})]
    assert points(T, "trace_count", [C], filters=["trace.tag.`mlflow.traceName` = 'other'"]) == [("trace_count", {}, {"COUNT": 1.0})]

    assert points(S, "span_count", [C], dimensions=["span_type", "span_status"]) == [
        ("span_count", {"span_type": "LLM", "span_status": "OK"}, {"COUNT": 2.0}),
        ("span_count", {"span_type": "UNKNOWN", "span_status": "ERROR"}, {"COUNT": 1.0}),
        ("span_count", {"span_type": "UNKNOWN", "span_status": "OK"}, {"COUNT": 2.0})]
    assert points(S, "latency", [MIN, MAX], dimensions=["span_name"], filters=["span.type = 'LLM'"]) == [
        ("latency", {"span_name": "llm"}, {"MIN": 50.0, "MAX": 150.0})]
    assert points(S, "span_count", [C], dimensions=["span_model_name", "span_model_provider"]) == [
        ("span_count", {"span_model_name": "gpt-x", "span_model_provider": "openai"}, {"COUNT": 2.0})]
    assert points(S, "total_cost", [SUM], dimensions=["span_model_name"]) == [("total_cost", {"span_model_name": "gpt-x"}, {"SUM": 3.5})]
    assert points(S, "total_cost", [SUM], start_time_ms=base + 11, end_time_ms=base + 3_600_000) == [("total_cost", {}, {"SUM": 2.0})]
    assert points(S, "span_count", [C], time_interval_seconds=3600, start_time_ms=base, end_time_ms=base + 7_200_000,
                  filters=["span.name = 'llm'", "trace.status = 'OK'"]) == [
        ("span_count", {"time_bucket": "2026-01-01T00:00:00+00:00"}, {"COUNT": 2.0})]

    assert points(A, "assessment_count", [C], dimensions=["assessment_name", "assessment_value"]) == [
        ("assessment_count", {"assessment_name": "answer", "assessment_value": '"42"'}, {"COUNT": 1.0}),
        ("assessment_count", {"assessment_name": "correct", "assessment_value": "false"}, {"COUNT": 1.0}),
        ("assessment_count", {"assessment_name": "correct", "assessment_value": "true"}, {"COUNT": 1.0}),
        ("assessment_count", {"assessment_name": "score", "assessment_value": "0.5"}, {"COUNT": 1.0}),
        ("assessment_count", {"assessment_name": "score", "assessment_value": "4.0"}, {"COUNT": 1.0})]
    assert points(A, "assessment_value", [AVG, 25.0], dimensions=["assessment_name"]) == [
        ("assessment_value", {"assessment_name": "correct"}, {"AVG": 0.5, "P25.0": 0.25}),
        ("assessment_value", {"assessment_name": "score"}, {"AVG": 2.25, "P25.0": 1.375})]
    assert points(A, "assessment_count", [C], filters=["assessment.type = 'expectation'"]) == [("assessment_count", {}, {"COUNT": 1.0})]
    assert points(A, "assessment_count", [C], filters=["assessment.name = 'score'", "trace.status = 'ERROR'"]) == [
        ("assessment_count", {}, {"COUNT": 1.0})]


def test_bad_trace_metrics_requests_get_mlflow_errors(rest, traced_experiment):
    def error(**body):
        request = {"experiment_ids": [traced_experiment], "view_type": "TRACES", "metric_name": "latency",
                   "aggregations": [{"aggregation_type": "AVG"}], **body}
        status, answer = rest("POST", V3 + "traces/metrics", json={k: v for k, v in request.items() if v is not None})
        return status, answer.get("error_code") if isinstance(answer, dict) else answer, (answer or {}).get("message", "")

    bad = (400, "INVALID_PARAMETER_VALUE")
    assert error(metric_name="bogus")[:2] == bad
    assert error(metric_name="bogus")[2].startswith("metric_name must be one of ['trace_count', 'session_count', 'latency'")
    assert error(aggregations=[{"aggregation_type": "COUNT"}])[2] == (
        "Found invalid aggregation_type(s): ['COUNT']. Supported aggregation types: ['AVG', 'MAX', 'MIN', 'PERCENTILE']")
    assert error(dimensions=["trace_status"])[2] == "Found invalid dimension(s): ['trace_status']. Supported dimensions: ['trace_name']"
    assert error(time_interval_seconds=60)[2] == "start_time_ms and end_time_ms are required if time_interval_seconds is set"
    assert error(filters=["span.name = 'x'"])[2] == "Filtering by span is only supported for SPANS view type, got TRACES"
    assert error(filters=["trace.status != 'x'"])[2] == "Invalid comparator: '!=', only '=' operator is supported"
    assert error(filters=["trace.bogus = 'x'"])[2] == "Invalid entity 'bogus' specified for view type 'trace'. Valid entities are ['status', 'tag', 'metadata']"
    assert error(filters=["trace.tag = 'x'"])[2] == "Filtering by tag requires a key, e.g. 'trace.tag.<key> = <value>'"
    assert error(filters=["trace.status = 'OK' AND trace.status = 'OK'"])[2] == "Invalid clause(s) in filter string: AND"
    assert error(filters=["trace.status = 5"])[2] == "Expected a quoted string value for status value (e.g. 'my-value'). Got value 5"
    assert error(view_type=None)[:2] == bad
    assert error(metric_name=None)[:2] == bad
    assert error(aggregations=None)[:2] == bad
    assert error(experiment_ids=None)[:2] == bad
    assert error(experiment_ids=["abc"])[2] == "Invalid experiment ID 'abc'. Experiment ID must be a valid integer."
    assert error(aggregations=[])[:2] == (400, "BAD_REQUEST")
    assert error(max_results=0)[:2] == (200, None)
    status, answer = rest("POST", V3 + "traces/metrics", json={"experiment_ids": ["999999"], "view_type": "TRACES", "metric_name": "trace_count",
                                                               "aggregations": [{"aggregation_type": "COUNT"}]})
    assert (status, answer) == (200, {"data_points": [{"metric_name": "trace_count", "values": {"COUNT": 0.0}}]})


@pytest.mark.cairn_only
def test_trace_metrics_refuse_what_mlflow_answers_with_a_500_or_reads_as_something_else(rest, traced_experiment):
    """MLflow answers a PERCENTILE without (or with a wrong) percentile_value with an HTML 500, and reads an enum
    name it does not know as the first value (view_type "BOGUS" as TRACES, aggregation_type "BOGUS" as COUNT)."""
    def error(view="TRACES", **aggregation):
        status, answer = rest("POST", V3 + "traces/metrics", json={"experiment_ids": [traced_experiment], "view_type": view,
                                                                   "metric_name": "latency", "aggregations": [aggregation]})
        return status, answer.get("error_code"), answer.get("message")

    assert error(aggregation_type="PERCENTILE") == (400, "INVALID_PARAMETER_VALUE", "Percentile value is required for PERCENTILE aggregation")
    assert error(aggregation_type="PERCENTILE", percentile_value=101) == (
        400, "INVALID_PARAMETER_VALUE", "Percentile value must be between 0 and 100, got 101.0")
    assert error(aggregation_type="AVG", percentile_value=5)[:2] == (400, "INVALID_PARAMETER_VALUE")
    assert error(aggregation_type="BOGUS")[:2] == (400, "INVALID_PARAMETER_VALUE")
    assert error(view="BOGUS", aggregation_type="AVG")[:2] == (400, "INVALID_PARAMETER_VALUE")


@mlflow.trace
def _chat(question, session=None, usage=None, cost=None):
    if session:
        mlflow.get_current_active_span().set_attribute("session.id", session)
    if usage:
        mlflow.update_current_trace(metadata={"mlflow.trace.tokenUsage": usage})
    if cost:
        mlflow.update_current_trace(metadata={"mlflow.trace.cost": cost})
    return "answer"


def test_session_token_usage_and_cost_are_kept_filtered_and_counted_as_mlflow_keeps_them(client, traced_experiment, no_client_warnings):
    """MLflow keeps these three in columns of their own: the session also comes from a span's `session.id`,
    token usage and cost are rewritten in one form (known keys, its key order, integers and floats) or dropped,
    and compare only whole."""
    from mlflow.entities.trace_metrics import AggregationType, MetricAggregation, MetricViewType

    _chat("q1", "s-1", '{"total_tokens": 15, "input_tokens": 10, "output_tokens": 5, "extra": 1}', '{"total_cost": 1, "input_cost": "0.5"}')
    _chat("q2", "s-1")
    _chat("q3", "s-2", '{"input_tokens": 10.0}', "nonsense")
    _chat("q4")
    traces = mlflow.search_traces(locations=[traced_experiment], return_type="list", order_by=["timestamp_ms ASC"])
    question = {t.info.trace_id: json.loads(t.info.request_preview)["question"] for t in traces}
    kept = {question[t.info.trace_id]: {k: v for k, v in t.info.trace_metadata.items()
                                        if k in ("mlflow.trace.session", "mlflow.trace.tokenUsage", "mlflow.trace.cost")} for t in traces}
    assert kept == {
        "q1": {"mlflow.trace.session": "s-1", "mlflow.trace.tokenUsage": '{"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}',
               "mlflow.trace.cost": '{"input_cost": 0.5, "total_cost": 1.0}'},
        "q2": {"mlflow.trace.session": "s-1"},
        "q3": {"mlflow.trace.session": "s-2", "mlflow.trace.tokenUsage": '{"input_tokens": 10}'},
        "q4": {},
    }

    def found(filter_string):
        return sorted(question[i] for i in search_ids(traced_experiment, filter_string))

    usage = "metadata.`mlflow.trace.tokenUsage`"
    assert found("metadata.`mlflow.trace.session` = 's-1'") == ["q1", "q2"]
    assert found("metadata.`mlflow.trace.session` IS NULL") == ["q4"]
    assert found(usage + """ = '{"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}'""") == ["q1"]
    assert found(usage + """ = '{"input_tokens":10,"output_tokens":5,"total_tokens":15}'""") == []
    assert found(usage + """ != '{"input_tokens": 10}'""") == ["q1"]
    assert found(usage + " != 'x'") == ["q1", "q3"]
    assert found(usage + " IS NOT NULL") == ["q1", "q3"]
    assert found("metadata.`mlflow.trace.cost` IS NULL") == ["q2", "q3", "q4"]
    assert found("""metadata.`mlflow.trace.cost` = '{"input_cost": 0.5, "total_cost": 1.0}'""") == ["q1"]
    with pytest.raises(mlflow.exceptions.MlflowException, match="Comparator 'LIKE' is not supported for reserved metadata 'mlflow.trace.tokenUsage'"):
        mlflow.search_traces(locations=[traced_experiment], filter_string=usage + " LIKE '%input%'")
    with pytest.raises(mlflow.exceptions.MlflowException, match="Ordering by reserved metadata 'mlflow.trace.cost' is not supported"):
        mlflow.search_traces(locations=[traced_experiment], order_by=["metadata.`mlflow.trace.cost` DESC"])

    store = client._tracking_client.store

    def metric(name, aggregation):
        result = store.query_trace_metrics(experiment_ids=[traced_experiment], view_type=MetricViewType.TRACES, metric_name=name,
                                           aggregations=[MetricAggregation(aggregation)])
        return [(p.dimensions, p.values) for p in result]

    assert metric("session_count", AggregationType.COUNT) == [({}, {"COUNT": 2.0})]
    assert metric("input_tokens", AggregationType.SUM) == [({}, {"SUM": 20.0})]


def test_a_new_users_llm_app_is_traced_and_evaluated_with_no_client_warning(client, traced_experiment, no_client_warnings):
    """The issue's "done means", as a new user writes it: an LLM-style app instrumented with `@mlflow.trace` (nested
    spans, a local function standing in for the model, a call that raises), then `mlflow.genai.evaluate` with a
    custom scorer. Every trace, assessment and metric arrives, and the client warns about nothing: no logged warning
    from mlflow's loggers (`no_client_warnings`) and no Python warning raised by mlflow's modules but pandas'
    deprecation notices."""
    import warnings

    from mlflow.genai.scorers import scorer

    @mlflow.trace(span_type="RETRIEVER")
    def retrieve(question):
        return [{"doc": "Paris is the capital of France."}] if "France" in question else []

    @mlflow.trace(span_type="LLM")
    def local_model(prompt):
        if "boom" in prompt:
            raise RuntimeError("the model is down")
        # (evaluate first calls predict_fn once untraced, to check it: no active span then)
        if span := mlflow.get_current_active_span():
            span.set_attribute("mlflow.chat.tokenUsage", {"input_tokens": len(prompt), "output_tokens": 3, "total_tokens": len(prompt) + 3})
        return "Paris" if "capital of France" in prompt else "I do not know"

    @mlflow.trace(span_type="CHAIN")
    def answer(question):
        docs = retrieve(question)
        return local_model(f"{question} {' '.join(d['doc'] for d in docs)}")

    @scorer
    def correct(outputs, expectations):
        return outputs == expectations["expected_response"]

    @scorer
    def short(outputs):
        return len(outputs) < 20

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert answer("Capital of France?") == "Paris"
        with pytest.raises(RuntimeError):
            answer("boom")
        failed = mlflow.get_last_active_trace_id()
        data = [{"inputs": {"question": "Capital of France?"}, "expectations": {"expected_response": "Paris"}},
                {"inputs": {"question": "Capital of Spain?"}, "expectations": {"expected_response": "Madrid"}}]
        result = mlflow.genai.evaluate(data=data, predict_fn=answer, scorers=[correct, short])
    # (deprecation notices about the client's own use of pandas, raised against MLflow's server alike, say nothing
    # about the server: `Pandas4Warning` from mlflow/data/digest_utils.py with pandas 3)
    deprecations = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
    from_mlflow = [f"{w.category.__name__}: {w.message} ({w.filename})" for w in caught
                   if "mlflow" in w.filename and not issubclass(w.category, deprecations)]
    assert from_mlflow == []

    error = mlflow.get_trace(failed)
    assert error.info.state.value == "ERROR"
    spans = {s.name: s for s in error.data.spans}
    assert spans["local_model"].status.status_code == SpanStatusCode.ERROR
    assert [e.name for e in spans["local_model"].events] == ["exception"]
    assert spans["local_model"].parent_id == spans["answer"].span_id

    assert result.metrics["correct/mean"] == 0.5 and result.metrics["short/mean"] == 1.0
    run = client.get_run(result.run_id)
    assert run.data.metrics["correct/mean"] == 0.5 and run.info.experiment_id == traced_experiment
    evaluated = mlflow.search_traces(run_id=result.run_id, return_type="list")
    assert len(evaluated) == 2
    for trace in evaluated:
        assert sorted(s.name for s in trace.data.spans) == ["answer", "local_model", "retrieve"]
        feedback = {a.name: a.value for a in trace.info.assessments if a.feedback is not None}
        question = json.loads(trace.info.request_preview)["question"]
        assert feedback == {"correct": question == "Capital of France?", "short": True}
        assert trace.info.token_usage["output_tokens"] == 3
    # The traces of the app itself (before the evaluation) are in the experiment too.
    assert len(mlflow.search_traces(locations=[traced_experiment], return_type="list")) == 4


@pytest.mark.cairn_only
def test_a_span_type_translated_from_genai_attributes_is_found_by_span_type(traced_experiment, no_client_warnings):
    """MLflow shows the type it translates from `gen_ai.operation.name` but keeps its span column as sent (none), so
    `span.type = 'CHAT_MODEL'` finds nothing there and `span_type` groups leave the span out; Cairn uses the type it
    shows everywhere (see the README's "deliberately differs" table)."""
    trace_id = _genai_trace(traced_experiment)
    assert search_ids(traced_experiment, "span.type = 'CHAT_MODEL'") == [trace_id]
    assert search_ids(traced_experiment, "span.type = 'AGENT' AND span.name = 'invoke_agent helper'") == [trace_id]
    assert search_ids(traced_experiment, "span.type = 'AGENT' AND span.name = 'embed'") == []
