"""The Traces tab of an experiment and the trace view, with traces logged by the real `mlflow` client."""

import os

os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"

import time  # noqa: E402

import mlflow  # noqa: E402
import pytest  # noqa: E402
from mlflow.entities import AssessmentSource, SpanEvent  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402


@mlflow.trace(span_type="RETRIEVER")
def search_docs(query):
    return ["doc-1", "doc-2"]


@mlflow.trace(span_type="LLM")
def call_model(prompt):
    span = mlflow.get_current_active_span()
    span.set_attribute("mlflow.chat.tokenUsage", {"input_tokens": 20, "output_tokens": 7, "total_tokens": 27})
    span.add_event(SpanEvent("first_token", attributes={"latency_ms": 12}))
    return {"text": f"answer to {prompt}"}


@mlflow.trace(name="assistant", span_type="CHAIN")
def assistant(question):
    docs = search_docs(question)
    return call_model(f"{question} with {len(docs)} docs")


@mlflow.trace(name="assistant")
def broken(question):
    raise RuntimeError("model unavailable")


@pytest.fixture(scope="module")
def traces_seed():
    experiment_id = mlflow.create_experiment(f"ui-traces-{int(time.time() * 1000)}")
    mlflow.set_experiment(experiment_id=experiment_id)
    ids = []
    for q in ["What is Cairn?", "How are spans stored?"]:
        assistant(q)
        ids.append(mlflow.get_last_active_trace_id())
    with pytest.raises(RuntimeError):
        broken("fail")
    failed = mlflow.get_last_active_trace_id()
    mlflow.log_feedback(trace_id=ids[0], name="helpful", value=True, rationale="clear answer",
                        source=AssessmentSource(source_type="HUMAN", source_id="ana"))
    mlflow.set_trace_tag(ids[0], "reviewed", "yes")
    return {"experiment_id": experiment_id, "ok": ids, "failed": failed}


def test_traces_tab_lists_state_latency_tokens_and_filters(ui, traces_seed):
    exp = traces_seed["experiment_id"]
    ui.open(f"/experiments/{exp}")
    ui.wait("document.getElementById('traces-link') !== null")
    ui.d.find_element(By.ID, "traces-link").click()
    ui.wait_ready()
    ui.wait("document.querySelectorAll('#traces-table tbody tr').length === 3")
    rows = ui.js("""return [...document.querySelectorAll('#traces-table tbody tr')].map(r =>
        [r.dataset.traceId, ...[...r.cells].map(c => c.textContent)])""")
    assert [r[0] for r in rows] == [traces_seed["failed"], traces_seed["ok"][1], traces_seed["ok"][0]]
    assert rows[0][3] == "ERROR" and rows[1][3] == "OK"
    assert rows[2][6] == "27"  # tokens
    assert "helpful: true" in rows[2][9]
    assert all(r[5] for r in rows)  # latency shown
    # The breadcrumb names the experiment, not just its id.
    ui.wait("document.querySelector('.experiment-crumb').textContent.startsWith('ui-traces-')")
    ui.screenshot("traces-list-wide-light")

    box = ui.d.find_element(By.ID, "trace-filter")
    box.send_keys("status = 'ERROR'", Keys.ENTER)
    ui.wait("document.querySelectorAll('#traces-table tbody tr').length === 1")
    assert ui.js("return document.querySelector('#traces-table tbody tr').dataset.traceId") == traces_seed["failed"]
    assert "filter=" in ui.js("return location.hash")

    box.clear()
    box.send_keys("tags.bogus = 1", Keys.ENTER)
    ui.wait("document.querySelector('#trace-filter-error .error') !== null")
    assert "quoted string" in ui.js("return document.querySelector('#trace-filter-error').textContent")
    assert ui.js("return window.__cairnErrors.length") == 0
    assert ui.console_errors(allow=["traces/search"]) == []


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_trace_view_shows_the_span_tree_timeline_io_events_and_assessments(ui, traces_seed, theme):
    exp = traces_seed["experiment_id"]
    trace_id = traces_seed["ok"][0]
    ui.open(f"/experiments/{exp}/traces/{trace_id}", theme=theme)
    ui.wait("document.querySelectorAll('#span-tree .span-row').length === 3")
    names = ui.js("return [...document.querySelectorAll('#span-tree .span-name')].map(n => n.textContent)")
    assert names == ["CHAIN assistant", "RETRIEVER search_docs", "LLM call_model"]
    # Children are indented under the root, and every bar lies inside the timeline.
    pads = ui.js("return [...document.querySelectorAll('#span-tree .span-name')].map(n => parseFloat(n.style.paddingLeft))")
    assert pads[0] < pads[1] == pads[2]
    bars = ui.js("""return [...document.querySelectorAll('#span-tree .span-bar')].map(b =>
        [parseFloat(b.style.left), parseFloat(b.style.width)])""")
    assert bars[0][0] == 0 and all(0 <= l and l + w <= 100.5 for l, w in bars)
    detail = ui.js("return document.getElementById('span-detail').textContent")
    assert "What is Cairn?" in detail  # the root's inputs
    summary = ui.js("return document.getElementById('trace-summary').textContent")
    assert "20 in, 7 out, 27 total" in summary and "reviewed=yes" in summary

    ui.d.find_elements(By.CSS_SELECTOR, "#span-tree .span-row")[2].click()
    ui.wait("document.querySelector('#span-detail h2').textContent === 'call_model'")
    detail = ui.js("return document.getElementById('span-detail').textContent")
    assert "answer to What is Cairn? with 2 docs" in detail
    assert "first_token" in detail and "latency_ms" in detail
    assessments = ui.js("return document.getElementById('trace-assessments').textContent")
    assert "helpful" in assessments and "HUMAN: ana" in assessments and "clear answer" in assessments
    assert ui.js("return window.__cairnErrors.length") == 0
    assert ui.console_errors() == []
    ui.screenshot(f"trace-view-wide-{theme}")


def test_a_failed_trace_shows_its_error_span(ui, traces_seed):
    ui.open(f"/experiments/{traces_seed['experiment_id']}/traces/{traces_seed['failed']}", size="narrow")
    ui.wait("document.querySelectorAll('#span-tree .span-row.span-error').length === 1")
    detail = ui.js("return document.getElementById('span-detail').textContent")
    assert "ERROR" in detail and "model unavailable" in detail
    ui.screenshot("trace-view-error-narrow-light")


def test_mlflow_evaluation_link_opens_the_traces_of_that_run(ui, traces_seed):
    """After mlflow.genai.evaluate the client prints MLflow's link `#/experiments/<id>/evaluation-runs?selectedRunUuid=<run>`:
    it opens the traces of that run, with their assessments."""
    exp = mlflow.create_experiment(f"ui-evaluation-{int(time.time() * 1000)}")
    mlflow.set_experiment(experiment_id=exp)
    assistant("Outside the run")
    with mlflow.start_run(experiment_id=exp) as run:
        assistant("In a run?")
        in_run = mlflow.get_last_active_trace_id()
    mlflow.set_experiment(experiment_id=traces_seed["experiment_id"])
    ui.open(f"/experiments/{exp}/evaluation-runs?selectedRunUuid={run.info.run_id}")
    ui.wait("location.hash.includes('/traces?filter=')")
    ui.wait("document.querySelectorAll('#traces-table tbody tr').length === 1")
    assert ui.js("return document.querySelector('#traces-table tbody tr').dataset.traceId") == in_run
    assert ui.js("return document.getElementById('trace-filter').value") == f"run_id = '{run.info.run_id}'"
    # The list names the run and links to its page (where an evaluation's metrics are).
    ui.wait("!document.getElementById('traces-run').hidden")
    assert ui.js("return document.querySelector('#traces-run a').textContent") == run.info.run_name
    assert ui.js("return document.querySelector('#traces-run a').getAttribute('href')") == f"#/experiments/{exp}/runs/{run.info.run_id}"
    assert ui.console_errors() == []
    # A hash-only move to the unfiltered list (a link, the back button) shows every trace, not the run's.
    ui.js(f"location.hash = '#/experiments/{exp}/traces'")
    ui.wait("document.querySelectorAll('#traces-table tbody tr').length === 2")
    assert ui.js("return document.getElementById('trace-filter').value") == ""
    assert ui.js("return document.getElementById('traces-run').hidden") is True
    ui.d.back()
    ui.wait("document.getElementById('trace-filter').value !== ''")
    ui.wait("document.querySelectorAll('#traces-table tbody tr').length === 1")
    # The run's own page names the run in its breadcrumb and links to the run's traces.
    ui.open(f"/experiments/{exp}/runs/{run.info.run_id}")
    ui.wait("document.getElementById('run-traces') !== null")
    assert ui.js("return document.querySelector('.crumbs').textContent").endswith(" / " + run.info.run_name)
    assert ui.js("return document.getElementById('run-traces').textContent") == "Traces1 trace"
    ui.screenshot("run-page-traces-card-wide-light")
    ui.d.find_element(By.CSS_SELECTOR, "#run-traces a").click()
    ui.wait("document.querySelectorAll('#traces-table tbody tr').length === 1")
    assert ui.js("return document.querySelector('#traces-table tbody tr').dataset.traceId") == in_run
    assert ui.console_errors() == []
