"""The console's web application (Flask): pages over the local execution store and bucket of one home.

Routes (all server-rendered; htmx polls the live parts):
  /executions                       the list, filtered by status, start time and source; refreshes itself
  /executions/<name>                one execution: graph, timeline, state input/output, events, buttons
  /executions/<name>/data           its run report (chart), validation, published partitions
  /executions/<name>/quarantine     a page of its quarantined rows
  /executions/<name>/redrive        GET: the confirmation; POST: RedriveExecution
  /executions/<name>/reprocess      GET: the confirmation; POST: a reprocess of its upload
  /upload                           GET: the form; POST: files PUT under raw/ (their events start runs)
  /query                            one read-only SELECT over `tickets` and `tickets_latest`

Safety: Jinja escapes every value (a CSV cell is text); every POST needs the session's CSRF token
(Flask-WTF), and the Host header must name the address served (no DNS rebinding); an execution name in a
URL must match Step Functions' name syntax and an existing record, and every file read is checked to lie
inside the home.
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask, abort, flash, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect

from ticketcore import layout
from ticketcore.alerts import remedy
from ticketcore.storage import LocalStorage
from ticketflow.console import views
from ticketflow.console.graph import state_machine_dot
from ticketflow.console.worker import ActionRefused, ConsoleWorker
from ticketflow.local.history import resume_state, summarize_history
from ticketflow.local.runtime import LOCAL_BUCKET
from ticketflow.ops.executions import ExecutionFilter, ExecutionNotFound, LocalExecutionStore, run_file_keys
from ticketflow.ops.render import (
    ENDED_BADLY,
    cause_text,
    csv_reading,
    encoding_read,
    event_rows,
    execution_row,
    failed_run,
    fmt_duration,
    fmt_time,
    redrive_points,
)
from ticketflow.ops.reprocess import refusal as reprocess_refusal

STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
LIST_LIMIT = 200
MAX_UPLOAD_BYTES = 5 * 1024**3


def refusal_of_upload(filename: str, size: int) -> str | None:
    """Why a file chosen in the upload form is not put under raw/ (None: it is put). The trigger's own rule
    (`ticketcore.trigger.skip_reason`) decides what starts an execution; a name that would not be one object
    right under raw/ is refused here."""
    from ticketcore.trigger import S3ObjectEvent, skip_reason

    name = filename.strip()
    if not name:
        return "no file name"
    if "/" in name or "\\" in name or name in (".", "..") or any(ord(c) < 32 for c in name):
        return "the name holds a path separator or a control character: give the file's own name"
    if name.startswith("."):
        return "a name starting with '.' is taken for an upload in flight and never picked up"
    if len(name.encode("utf-8")) > 255:
        return f"the name is {len(name.encode('utf-8'))} bytes long: at most 255"
    return skip_reason(S3ObjectEvent(bucket="local", key=layout.RAW_PREFIX + name, size=size))


def create_app(home: Path, worker: ConsoleWorker | None, definition: dict[str, Any],
               trusted_hosts: list[str] | None = None, secret_key: str | None = None) -> Flask:
    """The application for `home` (resolved); `worker` runs the buttons' actions and the event source
    (None: read-only pages, the buttons answer that no runtime runs); `definition` the ASL drawn."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY=secret_key or secrets.token_hex(32), MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES,
                      WTF_CSRF_TIME_LIMIT=None, TRUSTED_HOSTS=trusted_hosts)
    CSRFProtect(app)
    home = home.resolve()
    store = LocalExecutionStore(home)
    storage = LocalStorage(home, LOCAL_BUCKET)

    def inside_home(path: Path) -> Path:
        resolved = path.resolve()
        if not resolved.is_relative_to(home):
            abort(404)
        return resolved

    def execution(name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        if not views.NAME_PATTERN.match(name):
            abort(404)
        try:
            desc = store.describe(name)
        except ExecutionNotFound:
            abort(404)
        return desc, store.history(name)

    def run_files(desc: dict[str, Any]) -> dict[str, Path]:
        return {label: inside_home(storage.path(key)) for label, key in run_file_keys(desc)}

    @app.context_processor
    def common() -> dict[str, Any]:
        return {"home": home, "worker": worker, "contract": _contract_shown(worker), "fmt_time": fmt_time,
                "fmt_duration": fmt_duration,
                "cause_text": cause_text, "runtime_note": _runtime_note(worker)}

    @app.errorhandler(CSRFError)
    def csrf_refused(err: CSRFError) -> tuple[str, int]:
        return render_template("refused.html", reason=f"refused: {err.description} (no state was changed; if the "
                                                      "console was restarted, reload the page and try again)"), 400

    @app.errorhandler(404)
    def not_found(_err: Any) -> tuple[str, int]:
        return render_template("refused.html", reason="no such page or execution in this home"), 404

    @app.get("/runtime-note")
    def runtime_note() -> str:
        return render_template("_runtime_note.html")

    @app.get("/favicon.ico")
    def favicon() -> tuple[str, int]:
        return "", 204

    @app.get("/")
    def index() -> Any:
        return redirect(url_for("executions"))

    # ---------------------------------------------------------------- executions
    def listing() -> dict[str, Any]:
        args = request.args
        status = args.get("status") or None
        if status not in (None, *STATUSES):
            status = None
        errors, where = [], {}
        for field in ("since", "until"):
            text = (args.get(field) or "").strip()
            if text:
                from ticketflow.commands.executions import when

                try:
                    where[field] = when(text)
                except Exception as err:
                    errors.append(f"{field}: {err}")
        source = (args.get("source") or "").strip() or None
        found = [] if errors else store.list(limit=LIST_LIMIT,
                                             where=ExecutionFilter(status=status, source=source, **where))
        rows = []
        for desc in found:
            events = store.history(desc["executionArn"]) if desc.get("status") in ENDED_BADLY else None
            rows.append(execution_row(desc, events))
        query = urlencode({k: v for k, v in args.items() if k in ("status", "since", "until", "source") and v})
        return {"rows": rows, "errors": errors, "status": status or "", "since": args.get("since", ""),
                "until": args.get("until", ""), "source": source or "", "query": query,
                "statuses": STATUSES, "limit": LIST_LIMIT}

    @app.get("/executions")
    def executions() -> str:
        return render_template("executions.html", **listing())

    @app.get("/executions/table")
    def executions_table() -> str:
        return render_template("_executions_table.html", **listing())

    def execution_context(name: str) -> dict[str, Any]:
        desc, events = execution(name)
        runs = summarize_history(events)
        row = execution_row(desc, events)
        busy = worker.busy(name) if worker else False
        refusal = views.redrive_refusal(desc, events, runs)
        cannot_reprocess = reprocess_refusal(desc)
        advice = remedy(row.error, row.cause) if row.status in ENDED_BADLY else None
        files = {label: path for label, path in run_files(desc).items() if path.exists()}
        return {
            "desc": desc, "row": row, "runs": runs, "busy": busy,
            "live": row.status == "RUNNING" or busy,
            "dot": state_machine_dot(definition, runs),
            "bars": views.timeline(runs, row.start, row.stop),
            "events": event_rows(events),
            "cause": cause_text(row.cause) if row.cause else None,
            "advice": advice, "redrive_refusal": refusal, "reprocess_refusal": cannot_reprocess,
            "files": files, "pretty": views.pretty_json,
            # The state it ended in, only while it is ended badly (a redrive that succeeded has none).
            "failed": failed_run(runs) if row.status in ENDED_BADLY else None,
            "redriven_at": redrive_points(events),
            **views.execution_cost(home, desc, events),
        }

    @app.get("/executions/<name>")
    def execution_page(name: str) -> str:
        return render_template("execution.html", **execution_context(name))

    @app.get("/executions/<name>/live")
    def execution_live(name: str) -> str:
        return render_template("_execution_live.html", **execution_context(name))

    # ---------------------------------------------------------------- the data of a run
    @app.get("/executions/<name>/data")
    def execution_data(name: str) -> str:
        desc, _ = execution(name)
        files = run_files(desc)
        report = views.read_json(files["Report"])
        publication = views.read_json(files["Published"])
        validation = views.read_json(files["Validation"])
        published = int(publication["rows"]) if publication and "rows" in publication else None
        counts = views.outcome_counts(report, published) if report else []
        return render_template(
            "data.html", desc=desc, row=execution_row(desc, None), report=report, counts=counts,
            csv_reading=csv_reading(report) if report else None, encoding=encoding_read(report) if report else None,
            validation=validation, expectations=views.expectation_rows(validation),
            partitions=views.partitions(publication), publication=publication,
            quarantine=views.quarantine_page(files["Quarantine"], 1, per_page=10) if "Quarantine" in files else None)

    @app.get("/executions/<name>/quarantine")
    def quarantine(name: str) -> str:
        desc, _ = execution(name)
        page = request.args.get("page", "1")
        number = int(page) if page.isdigit() else 1
        path = run_files(desc).get("Quarantine")
        return render_template("quarantine.html", desc=desc, row=execution_row(desc, None),
                               quarantine=views.quarantine_page(path, number) if path else None)

    # ---------------------------------------------------------------- buttons
    @app.route("/executions/<name>/redrive", methods=["GET", "POST"])
    def redrive(name: str) -> Any:
        desc, events = execution(name)
        runs = summarize_history(events)
        refusal = views.redrive_refusal(desc, events, runs)
        if request.method == "GET":
            resumed = resume_state(runs)
            what = (f"resume at {resumed.name}, with the input it had; the states before it are not run again"
                    if resumed else None)
            return render_template("confirm.html", desc=desc, action="redrive", refusal=refusal, what=what)
        if refusal:
            flash(f"cannot redrive {name}: {refusal}", "error")
        else:
            try:
                _need(worker).redrive(name)
                flash(f"redrive of {name} started: it resumes at the state that failed", "info")
            except ActionRefused as refused:
                flash(f"cannot redrive {name}: {refused}", "error")
        return redirect(url_for("execution_page", name=name))

    @app.route("/executions/<name>/reprocess", methods=["GET", "POST"])
    def reprocess(name: str) -> Any:
        desc, _ = execution(name)
        refusal = reprocess_refusal(desc)
        if request.method == "GET":
            return render_template("confirm.html", desc=desc, action="reprocess", refusal=refusal, what=None)
        if refusal:
            flash(f"cannot reprocess {name}: {refusal}", "error")
            return redirect(url_for("execution_page", name=name))
        try:
            new_name, started = _need(worker).reprocess(name)
        except ActionRefused as refused:
            flash(f"cannot reprocess {name}: {refused}", "error")
            return redirect(url_for("execution_page", name=name))
        flash(f"reprocess of {name} started as {new_name}" if started else
              f"{new_name} already reprocessed this upload with this contract and code: not run again", "info")
        return redirect(url_for("execution_page", name=new_name))

    # ---------------------------------------------------------------- upload
    @app.route("/upload", methods=["GET", "POST"])
    def upload() -> Any:
        if request.method == "GET":
            return render_template("upload.html")
        chosen = [f for f in request.files.getlist("files") if f and f.filename]
        if not chosen:
            flash("no file chosen: nothing uploaded", "error")
            return redirect(url_for("upload"))
        if worker is None:
            flash("this console is read-only (--read-only): nothing uploaded", "error")
            return redirect(url_for("upload"))
        if worker.draining.is_set():
            flash("the console is stopping (Ctrl-C): nothing uploaded; upload again once it runs", "error")
            return redirect(url_for("upload"))
        uploaded = 0
        staging = home / ".console-uploads"
        staging.mkdir(parents=True, exist_ok=True)
        for item in chosen:
            name = item.filename or ""  # browsers send the file's own name; anything else is refused below
            with tempfile.NamedTemporaryFile(dir=staging, prefix=".", delete=False) as tmp:
                item.save(tmp)
                tmp_path = Path(tmp.name)
            try:
                refusal = refusal_of_upload(name, tmp_path.stat().st_size)
                if refusal:
                    flash(f"{name or '(unnamed)'}: not uploaded: {refusal}", "error")
                    continue
                key = layout.RAW_PREFIX + name
                replaced = storage.exists(key)
                version = storage.put_file(key, tmp_path).version_id
                source = "its execution starts in a moment" if worker.event_source else \
                    "a running `ticketflow watch` starts its execution"
                flash(f"{name}: uploaded to {key} (version {version}"
                      + ("; the earlier version stays as an older version" if replaced else "") + f"); {source}",
                      "info")
                uploaded += 1
            finally:
                tmp_path.unlink(missing_ok=True)
        # Nothing went up: stay on the form to choose another file.
        return redirect(url_for("executions") if uploaded else url_for("upload"))

    # ---------------------------------------------------------------- tables
    @app.get("/query")
    def query_page() -> str:
        from ticketflow.ops import query

        sql = request.args.get("sql", "").strip()
        result: dict[str, Any] = {}
        if sql:
            try:
                columns, rows, more = query.run_read_only(home, sql)
                result = {"columns": columns, "rows": [[query.cell_text(v) for v in r] for r in rows], "more": more}
            except (query.NothingPublished, query.QueryError) as err:
                result = {"error": str(err)}
        example = "SELECT status, count(*) AS tickets FROM tickets_latest GROUP BY 1 ORDER BY 2 DESC"
        return render_template("query.html", sql=sql or example, ran=bool(sql), **result)

    return app


def _need(worker: ConsoleWorker | None) -> ConsoleWorker:
    if worker is None:
        raise ActionRefused("this console runs no runtime (started with --read-only)")
    return worker


def _runtime_note(worker: ConsoleWorker | None) -> str | None:
    if worker is None:
        return "read-only: this console starts nothing (buttons and upload are off)"
    if worker.failed_to_start:
        return f"the console's runtime stopped: {worker.failed_to_start}"
    if not worker.ready.is_set():
        return "starting the local runtime (Spark) ..."
    if worker.draining.is_set():
        return "stopping (Ctrl-C): running executions finish; uploads and buttons are refused"
    if not worker.event_source:
        return "uploads are run by a `ticketflow watch` beside this console (started with --no-watch)"
    return None


def _contract_shown(worker: ConsoleWorker | None) -> str:
    from ticketcore.contract import DEFAULT_CONTRACT_PATH

    contract = (worker.contract if worker else None) or DEFAULT_CONTRACT_PATH
    return str(Path(contract).resolve())
