"""Headless runs: pull → match → plan → auto-approve by policy → plan → apply → audit export.

``recon run`` executes the whole pipeline unattended from the same
``recon.toml`` the app uses, under the store lock (so two runs, or a run and an
apply started from the app, never overlap). It is a parent run: every stage
records its own run with ``parent_id`` set to it. An apply left unfinished by
a crash is resumed first. The outcome is a JSON summary and one of the pinned
exit codes (0, 3 configuration, 4 partial failure, 5 locked, 6 budget
exhausted, 7 auth failed, 8 apply held by ``[policy] max_writes``); a notice goes
to the configured webhooks on failure (and on success when asked).

Examples:
    >>> from recon.config import ReconConfig
    >>> summary = run_pipeline(ReconConfig(), stages=["pull", "match"])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from .config import ReconConfig
from .errors import (
    AuditError,
    BudgetExhausted,
    ExitCode,
    LockedError,
    OutputError,
    PartialFailure,
    ReconError,
    UsageError,
    WritesHeld,
    crash_logged,
    redact,
)
from .lock import lock_info, mark_notified, store_lock
from .models import new_run_id, now_iso
from .store import finish_run, open_store, start_run, store_problem, transaction

if TYPE_CHECKING:
    from .apply import Approved

__all__ = ["STAGES", "notify_config_failure", "run_pipeline"]

log = logging.getLogger(__name__)

#: the stages of a headless run, in order
STAGES = ("pull", "match", "plan", "policy", "replan", "apply", "export")

Progress = Callable[[str, dict[str, Any]], None]


def _as_dict(result: Any) -> dict[str, Any]:
    """A stage result as plain data (dataclasses, dicts or run ids)."""
    if result is None:
        return {}
    if isinstance(result, str):
        return {"run_id": result}
    if isinstance(result, dict):
        return result
    # a result's own summary first: a plan's rows (1.6M on a large store) never go into the
    # run summary, stdout or the parent run's row
    to_dict = (
        getattr(result, "summary", None)
        or getattr(result, "to_dict", None)
        or getattr(result, "as_dict", None)
    )
    if callable(to_dict):
        return dict(to_dict())
    from dataclasses import asdict, is_dataclass

    if is_dataclass(result) and not isinstance(result, type):
        return {k: v for k, v in asdict(result).items() if _jsonable(v)}
    return {"result": str(result)}


def _budget_error(cfg: ReconConfig, exc: BudgetExhausted, stages: dict[str, Any]) -> str:
    """A spent budget as a scheduled run's operator reads it: the run's own ``[budget]`` of
    the CRM whose calls ran out (a stage's error names what was left for that stage), and
    that the next run resumes. A budget too small for one page keeps its words (no later run
    can resume with it); a CRM's own limit (the daily allocation) gets the same ending."""
    text = exc.message
    if "cannot fit one page" in text:
        return str(exc)
    caps = {
        s: n
        for s, n in (
            ("hubspot", cfg.budget.hubspot_calls),
            ("salesforce", cfg.budget.salesforce_calls),
        )
        if n is not None
    }
    if "API call budget" in text and caps:
        used = _api_calls(stages)
        spent = (
            [s for s in caps if s in text.lower()]
            or [s for s in caps if used.get(s, 0) >= caps[s]]
            or list(caps)
        )
        text = (
            "the API call budget of this run is spent ("
            + ", ".join(f"[budget] {s}_calls = {caps[s]:,}" for s in spent)
            + ")"
        )
        return f"{text}; the next run resumes where this one stopped (or raise the budget)"
    return f"{text}; the next run resumes where this one stopped"


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | type(None) | list | dict)


def _errors_by_class(stage_results: dict[str, dict[str, Any]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for result in stage_results.values():
        # apply reports failed items per class; a failed stage its one error class
        failed = result.get("failed")
        if isinstance(failed, dict):
            for cls, count in failed.items():
                total[cls] += int(count)
        if result.get("error_classes"):  # a pull whose sources failed: each source's class
            for cls in result["error_classes"]:
                total[cls] += 1
        elif result.get("error_class"):
            total[result["error_class"]] += 1
    return dict(total)


def _api_calls(stage_results: dict[str, dict[str, Any]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for result in stage_results.values():
        # what this run spent: an apply's calls made by this process (a resumed apply's
        # api_calls count those before it stopped, a dry run's the batches it would send)
        made = result.get("calls_made") if "calls_made" in result else None
        for crm, count in (made or result.get("api_calls") or result.get("calls") or {}).items():
            if isinstance(count, int | float):
                total[crm] += int(count)
    return dict(total)


def run_pipeline(
    cfg: ReconConfig,
    *,
    dry_run: bool = False,
    sample: int | None = None,
    stages: Iterable[str] = STAGES,
    export_formats: Iterable[str] = ("jsonl",),
    notify: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the pipeline headless and return its summary (never raises for stage failures).

    Args:
        cfg: the configuration (the same one the app uses).
        dry_run: plan and auto-approve, but write nothing to the CRMs.
        sample: at most this many records per object (a test run on a sample).
        stages: a subset of :data:`STAGES` to run (default: all); one stage may be given
            as a string.
        export_formats: audit export formats written at the end.
        notify: send the webhook notice (per ``[notify]``).
        progress: called as ``progress(stage, info)`` when a stage starts and ends, and as
            ``progress("run", {"event": "started", "run_id": ...})`` once the run has its id.

    Returns:
        The summary: ``run_id``, ``status`` (ok | partial | budget | held | failed | locked),
        ``exit_code``, per-stage results, ``errors_by_class``, ``api_calls``, ``audit_anchor``.

    Raises:
        UsageError: an unknown stage, or none.
    """
    if isinstance(stages, str):  # "export" would be read letter by letter
        stages = (stages,)
    stages = list(stages)
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise UsageError(
            f"unknown stage {unknown[0]!r}" if unknown else "no stage to run",
            hint="stages: " + " ".join(STAGES),
        )
    if "replan" in stages and "plan" not in stages:  # it plans again after the policy's plan
        raise UsageError("the replan stage runs only with the plan stage", hint="add --stage plan")
    wanted = [s for s in STAGES if s in set(stages)]
    report = progress or (lambda _stage, _info: None)
    summary: dict[str, Any] = {
        "run_id": None,
        "status": "running",
        "exit_code": int(ExitCode.OK),
        "dry_run": dry_run,
        "sample": sample,
        "started_at": now_iso(),
        "stages": {},
    }
    try:
        db = open_store(cfg.store.path)
    except ReconError as exc:
        # a store that cannot be opened fails every scheduled run until someone looks: the
        # notice says so, as for any run that does not succeed
        _stopped(summary, exc)
        if notify:
            from .notify import notify_run

            summary["notified"] = notify_run(cfg.notify, summary)
        return summary
    try:
        # the lock names the run (and so its stage): a command it keeps out says which run
        parent = new_run_id("run")
        with store_lock(db, holder="recon run", run_id=parent, heartbeat_every=30):
            start_run(
                db,
                "run",
                run_id=parent,
                config={
                    "dry_run": dry_run,
                    "sample": sample,
                    "stages": wanted,
                    "config": cfg.redacted(),
                },
            )
            summary["run_id"] = parent
            report("run", {"event": "started", "run_id": parent})
            status, exit_code, error = "ok", int(ExitCode.OK), None
            try:
                _run_stages(
                    db, cfg, parent, wanted, summary, dry_run, sample, export_formats, report
                )
            except PartialFailure as exc:
                # the export already ran: every write, failed or not, is in the audit
                status, exit_code, error = "partial", int(exc.exit_code), str(exc)
                if "waiting_by_kind" not in summary and not dry_run:
                    _waiting(db, summary)
            except WritesHeld as exc:  # this apply sent nothing (an apply resumed first may have)
                status, exit_code, error = "held", int(exc.exit_code), str(exc)
                _export_after_failure(db, cfg, parent, summary, wanted, export_formats)
                _waiting(db, summary)  # what the person now looks at
            except BudgetExhausted as exc:
                status, exit_code = "budget", int(exc.exit_code)
                error = _budget_error(cfg, exc, summary["stages"])
                _export_after_failure(db, cfg, parent, summary, wanted, export_formats)
            except ReconError as exc:
                status, exit_code, error = "failed", int(exc.exit_code), str(exc)
                _export_after_failure(db, cfg, parent, summary, wanted, export_formats)
            except Exception as exc:
                store = (
                    store_problem(exc, cfg.store.path)
                    if isinstance(exc, sqlite3.DatabaseError)
                    else None
                )
                said = store
                if store is None:
                    # the traceback goes to a crash log (as for any command), named in the
                    # error; the text may echo a secret: blanked
                    log.error("recon run %s failed: %s", parent, type(exc).__name__)
                    said = redact(f"{type(exc).__name__}: {exc}") + f" ({crash_logged(exc)})"
                status, exit_code, error = "failed", int(ExitCode.UNEXPECTED), said
            stage_results = summary["stages"]
            summary.update(
                status=status,
                exit_code=exit_code,
                error=error,
                errors_by_class=_errors_by_class(stage_results),
                api_calls=_api_calls(stage_results),
                counts=_counts(stage_results),
                ended_at=now_iso(),
            )
            finish_run(db, parent, status=status, summary=summary, error=error)
    except LockedError as exc:
        _stopped(summary, exc)
    holder = lock_info(db) if summary["status"] == "locked" else None
    if notify and holder and holder.get("notified_at"):
        # a schedule meeting the same long run again: one notice per holder, not per attempt
        summary["notified"] = {}
        summary["notice"] = (
            f"not sent: a notice about this holder went out at {holder['notified_at']}"
        )
    elif notify:
        from .notify import notify_run

        summary["notified"] = notify_run(cfg.notify, summary)
        if holder and any(summary["notified"].values()):
            mark_notified(db, holder)
    return summary


def notify_config_failure(
    config_path: str | Path | None, exc: ReconError, *, dry_run: bool = False
) -> dict[str, bool]:
    """Send the notice of a run refused because its configuration does not load.

    A scheduled run whose ``recon.toml`` someone broke would otherwise fail every night
    without a word: its ``[notify]`` section is read alone
    (:func:`~recon.config.notify_section_of`) and, when it names a hook, told. Returns what
    :func:`~recon.notify.notify_run` returns (``{}``: no hook could be read).
    """
    from .config import notify_section_of
    from .notify import notify_run

    section = notify_section_of(config_path)
    if section is None:
        return {}
    summary: dict[str, Any] = {"run_id": None, "dry_run": dry_run, "stages": {}}
    _stopped(summary, exc)
    return notify_run(section, summary)


def _stopped(summary: dict[str, Any], exc: ReconError) -> None:
    """``summary`` of a run stopped before its stages: the store locked or not to be opened."""
    summary.update(
        status="locked" if isinstance(exc, LockedError) else "failed",
        exit_code=int(exc.exit_code),
        error=str(exc),
        ended_at=now_iso(),
    )


def _counts(stage_results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pull = stage_results.get("pull", {})
    if "records" in pull:
        out["records_pulled"] = pull["records"]
    policy = stage_results.get("policy", {})
    if policy:
        out["auto_approved"] = sum(
            v for k, v in policy.items() if isinstance(v, int) and k != "lapsed"
        )
    # what this run wrote: the apply, and an unfinished apply it resumed first
    for name in ("resume", "apply"):
        result = stage_results.get(name, {})
        for key in ("applied", "skipped", "stale", "pending"):
            # a resumed apply's own `applied` includes what it confirmed before it stopped
            value = (
                result.get("applied_now")
                if key == "applied" and not result.get("dry_run")
                else None
            )
            value = value if isinstance(value, int) else result.get(key)
            # a dry run wrote nothing: what it counts is what it would apply
            name = "would_apply" if key == "applied" and result.get("dry_run") else key
            if isinstance(value, int):
                out[name] = out.get(name, 0) + value
        if result.get("status") == "held" and isinstance(result.get("by_action"), dict):
            out["held"] = dict(result["by_action"])  # the writes [policy] max_writes held
        if isinstance(result.get("failed"), dict):
            failed = out.setdefault("failed", {})
            for cls, n in result["failed"].items():
                failed[cls] = failed.get(cls, 0) + n
    return out


def _run_stages(
    db: sqlite_utils.Database,
    cfg: ReconConfig,
    parent: str,
    wanted: list[str],
    summary: dict[str, Any],
    dry_run: bool,
    sample: int | None,
    export_formats: Iterable[str],
    report: Progress,
) -> None:
    results: dict[str, dict[str, Any]] = summary["stages"]
    spent: Counter[str] = Counter()  # API calls of this run so far, per CRM

    def budgeted() -> ReconConfig:
        """``cfg`` with ``[budget]`` less what this run's earlier stages spent: the budget
        caps the whole run, not each stage."""
        b = cfg.budget
        if b.hubspot_calls is None and b.salesforce_calls is None:
            return cfg
        left = {
            key: None if limit is None else max(0, limit - spent[system])
            for key, limit, system in (
                ("hubspot_calls", b.hubspot_calls, "hubspot"),
                ("salesforce_calls", b.salesforce_calls, "salesforce"),
            )
        }
        return cfg.model_copy(update={"budget": b.model_copy(update=left)})

    def stage(name: str, fn: Callable[[], Any]) -> dict[str, Any]:
        report(name, {"event": "start"})
        try:
            out = _as_dict(fn())
        except ReconError as exc:
            partial = getattr(exc, "result", None)
            results[name] = {
                **(_as_dict(partial) if partial is not None else {}),
                "error_class": str(getattr(exc, "error_class", "") or "") or None,
                "error": str(exc),
            }
            if getattr(exc, "error_classes", None):
                results[name]["error_classes"] = list(exc.error_classes)  # type: ignore[attr-defined]
            raise
        results[name] = out
        spent.update(_api_calls({name: out}))
        report(name, {"event": "end", **out})
        if out.get("status") == "budget":
            raise BudgetExhausted(f"{name}: the API call budget is spent; the next run resumes")
        return out

    def apply_stage(name: str, plan_run_id: str | None, **options: Any) -> dict[str, Any]:
        """An apply of ``plan_run_id`` under the run's remaining budget and the policy's
        merge confirmation."""
        from .apply import apply_plan

        return stage(
            name,
            lambda: apply_plan(
                db,
                budgeted(),
                plan_run_id=plan_run_id,
                confirm_merges=cfg.policy.merges,
                parent_run_id=parent,
                **options,
            ),
        )

    if not dry_run and "apply" in wanted:
        from .apply import unfinished_apply

        pending = unfinished_apply(db)
        if pending:
            log.warning("resuming apply run %s left unfinished", pending[0])
            # named before it runs: a resume stopped again (budget, login) still exports
            summary["resumed_apply_run_id"] = pending[0]
            resumed = apply_stage("resume", pending[1], resume=True)
            summary["resumed_apply_run_id"] = resumed.get("run_id") or pending[0]

    if "pull" in wanted:
        from .pull import run_pull

        stage("pull", lambda: run_pull(db, budgeted(), sample=sample, parent_run_id=parent))
    match_run = None
    if "match" in wanted:
        from .match import run_match

        match_run = stage("match", lambda: run_match(db, cfg, parent_run_id=parent)).get("run_id")

    def plan(name: str) -> str | None:
        from .plan import build_plan

        return stage(
            name,
            lambda: build_plan(
                db, cfg, match_run_id=match_run, sample=sample, parent_run_id=parent
            ),
        ).get("run_id")

    from .plan_load import decisions_mark

    plan_run = plan("plan") if "plan" in wanted else None
    # what a second plan would read, as it was when the first one was built
    mark = decisions_mark(db) if plan_run is not None and "replan" in wanted else None
    # a dry run's policy decisions are taken back at its end: they "write nothing" either
    tag = f"auto-approved by policy in {parent}"
    lapsed: list[int] = []

    def after_plan(plan_run: str | None) -> None:
        """The policy, the second plan, apply, export and prune."""
        if "policy" in wanted:
            from .policy import auto_approve

            # the links and clusters of the match run the plan was built from (a run of
            # --stage plan --stage policy takes the latest finished one)
            from .store import resolve_run_id

            plan_of = plan_run or resolve_run_id(db, None, "plan", finished=True)
            match_of = match_run or _match_run_of(db, plan_of)
            stage(
                "policy",
                lambda: auto_approve(
                    db,
                    cfg.policy,
                    match_run_id=match_of,
                    plan_run_id=plan_of,
                    note=tag,
                    lapsed_ids=lapsed,
                ),
            )
        if "replan" in wanted and "plan" in wanted:
            if mark is not None and decisions_mark(db) == mark:
                # the policy decided nothing a plan reads (its approvals are read by apply):
                # planning again would give the same items
                results["replan"] = {"run_id": plan_run, "reused": True}
                report("replan", {"event": "start"})  # (every stage's log has both)
                report("replan", {"event": "end", **results["replan"]})
            else:  # a decision a plan reads changed: plan again
                plan_run = plan("replan")
        approved = None  # the approved items read to count them: the apply uses them
        if "apply" in wanted and not dry_run:  # (a dry run sends nothing: never held)
            try:
                approved = _hold_large_apply(db, cfg, plan_run, results, report)
            except WritesHeld:
                resumed = results.get("resume") or {}
                if resumed.get("status") == "partial":  # its failures are the louder news
                    raise _partial(resumed) from None
                raise
        if "apply" in wanted:
            applied = apply_stage(
                "apply",
                plan_run,
                dry_run=dry_run,
                reviewer="policy",
                # what the resumed apply just failed is not sent (and counted) twice in one run
                skip_failed_of=summary.get("resumed_apply_run_id"),
                approved=approved,
            )
            summary["apply_run_id"] = applied.get("run_id")
            if applied.get("status") == "partial":
                if "export" in wanted:
                    _export(db, cfg, parent, summary, export_formats)
                raise _partial(results.get("resume") or {}, applied)
        if "export" in wanted:
            if "apply" not in wanted and not summary.get("apply_run_id"):
                # `--stage export` alone: the audit of the latest real apply
                row = db.execute(
                    "select run_id from runs where stage = 'apply' and status != 'running' and "
                    "coalesce(json_extract(config, '$.dry_run'), 0) = 0 "
                    "order by started_at desc, rowid desc limit 1"
                ).fetchone()
                summary["apply_run_id"] = row[0] if row else None
            first = _export(db, cfg, parent, summary, export_formats)
            if errors := summary.get("export_errors"):
                # a file that cannot be written is an OutputError, as in `recon audit export`
                raise (OutputError if isinstance(first, OutputError) else AuditError)(
                    f"the audit export failed for {len(errors)} file(s): {errors[0]['error']}",
                    hint="the writes are applied and audited in the store: export them again with "
                    "`recon audit export`",
                )
        if not dry_run and ({"plan", "policy", "apply"} & set(wanted)):
            _waiting(db, summary)
        if cfg.store.keep_runs:
            from .store import prune_runs

            stage("prune", lambda: prune_runs(db, cfg.store.keep_runs or 1))

    try:
        after_plan(plan_run)
    finally:
        if dry_run and "policy" in wanted:
            _take_back(db, tag, lapsed)
    resumed = results.get("resume") or {}
    if resumed.get("status") == "partial":  # the resumed apply's failures count as well
        raise _partial(resumed, results.get("apply") or {})


def _waiting(db: sqlite_utils.Database, summary: dict[str, Any]) -> None:
    """What the run leaves for a person, as ``recon status`` shows it: ``waiting_by_kind``
    and ``waiting_for_review`` (the notice says it: a queue that only grows is a schedule whose
    results nobody applies). Read through the review queue, which this indexes for the new
    plan (before a prune, which keeps the runs the queue was indexed from; the review app then
    opens at once). Not for a dry run: its policy decisions are taken back at its end, so what
    waits is what waited before (``recon status``)."""
    from .insights import waiting_by_kind

    waiting = waiting_by_kind(db)
    if waiting is not None:
        summary["waiting_by_kind"] = waiting
        summary["waiting_for_review"] = sum(waiting.values())


def _hold_large_apply(
    db: sqlite_utils.Database,
    cfg: ReconConfig,
    plan_run: str | None,
    results: dict[str, dict[str, Any]],
    report: Progress,
) -> Approved | None:
    """Hold the apply when it would send more than ``[policy] max_writes`` writes; the
    approved items read to count them (:class:`recon.apply.Approved`), None without a limit.

    A wrong default rule or a new mapping turns into a write to every linked record; an
    unattended run stops before sending any of them and says so (exit 8, a notice), so a
    person looks at the plan and applies it with ``recon apply``. Merges count only when the
    policy may confirm them.

    Raises:
        WritesHeld: the pending writes exceed the limit.
    """
    limit = cfg.policy.max_writes
    if limit is None:
        return None
    from .apply import pending_items, read_approved
    from .store import resolve_run_id

    plan = resolve_run_id(db, plan_run, "plan", finished=True)
    if plan is None:
        return None
    approved = read_approved(db, plan)
    pending = [
        i
        for i in pending_items(db, plan, approved)
        if cfg.policy.merges or i.get("action") != "merge"
    ]
    if len(pending) <= limit:
        return approved
    per_action = Counter(str(i.get("action")) for i in pending)
    results["apply"] = {
        "status": "held",
        "plan_run_id": plan,
        "pending": len(pending),
        "max_writes": limit,
        "by_action": dict(sorted(per_action.items())),
    }
    report("apply", {"event": "end", **results["apply"]})
    raise WritesHeld(
        f"apply held: plan {plan} would send {len(pending):,} writes "
        f"({', '.join(f'{a} {n:,}' for a, n in sorted(per_action.items()))}), more than "
        f"[policy] max_writes = {limit:,}; nothing was sent",
        hint="look at the plan (`recon plan`, the review app), then apply it with `recon apply`, "
        "or raise [policy] max_writes",
    )


def _partial(*applies: dict[str, Any]) -> PartialFailure:
    """The error of a run whose applies (the one it resumed first, its own) failed some
    items: every failure of the run, by class, and what this run applied (``applied_now``:
    a resumed apply's ``applied`` counts its writes before the stop too).

    Examples:
        >>> str(_partial({"failed": {"validation": 2}, "applied": 500, "applied_now": 0},
        ...              {"failed": {"validation": 1}, "applied_now": 0}))
        '3 item(s) failed; nothing was applied'
    """
    by_class: dict[str, int] = {}
    for part in applies:
        for cls, n in (part.get("failed") or {}).items():
            by_class[cls] = by_class.get(cls, 0) + int(n)
    failed = sum(by_class.values())
    done = sum(int(part.get("applied_now", part.get("applied")) or 0) for part in applies)
    return PartialFailure(
        f"{failed:,} item(s) failed; " + (f"{done:,} applied" if done else "nothing was applied"),
        counts=by_class,
    )


def _match_run_of(db: sqlite_utils.Database, plan_run: str | None) -> str | None:
    """The match run a plan run was built from, else the latest finished match run."""
    from .store import get_run, resolve_run_id

    run = get_run(db, plan_run) if plan_run else None
    config = (run or {}).get("config") or {}
    if isinstance(config, dict) and config.get("match_run_id"):
        return str(config["match_run_id"])
    return resolve_run_id(db, None, "match", finished=True)


def _take_back(db: sqlite_utils.Database, tag: str, lapsed: list[int]) -> None:
    """Undo what a dry run's policy stored: its approvals, and the lapses of earlier ones."""
    with transaction(db):
        db.execute("delete from decisions where decided_by = 'policy' and note = ?", [tag])
        for i in range(0, len(lapsed), 500):
            chunk = lapsed[i : i + 500]
            marks = ", ".join("?" * len(chunk))
            db.execute(f"update decisions set superseded = 0 where decision_id in ({marks})", chunk)


def _export_after_failure(
    db: sqlite_utils.Database,
    cfg: ReconConfig,
    parent: str,
    summary: dict[str, Any],
    wanted: list[str],
    formats: Iterable[str],
) -> None:
    """A run that stopped (budget, auth...) after it wrote exports what it wrote anyway."""
    if "export" not in wanted or summary.get("exports") is not None:
        return
    apply_ = summary["stages"].get("apply") or {}
    if not summary.get("apply_run_id") and apply_.get("run_id"):
        summary["apply_run_id"] = apply_["run_id"]
    if not (summary.get("apply_run_id") or summary.get("resumed_apply_run_id")):
        return
    try:
        _export(db, cfg, parent, summary, formats)
    except ReconError as exc:  # the run's own error stays the one reported
        log.warning("audit export after a failed run: %s", exc)


def _export(
    db: sqlite_utils.Database,
    cfg: ReconConfig,
    parent: str,
    summary: dict[str, Any],
    formats: Iterable[str],
) -> Exception | None:
    """Write the audit exports of the run's applies into ``[store] exports_dir``; the first
    failure (each is listed under ``export_errors``; the other files are still written)."""
    from .audit import anchor, export

    out_dir = Path(cfg.store.exports_dir)
    files = []
    # the apply's writes, and those of an unfinished apply this run resumed first
    runs = [
        (summary.get("apply_run_id"), f"audit-{parent}"),
        (summary.get("resumed_apply_run_id"), f"audit-{parent}-resumed"),
    ]
    failures: list[dict[str, str]] = []
    first: Exception | None = None
    if not summary.get("dry_run"):
        for apply_run, stem in runs:
            if not apply_run:
                continue
            for fmt in formats:
                path = out_dir / f"{stem}.{fmt}"
                try:
                    export(db, fmt, path, run_id=apply_run, option="[store] exports_dir")
                except Exception as exc:  # one format failing neither stops the others
                    log.warning(
                        "audit export %s failed: %s", path, exc
                    )  # nor hides the apply's outcome
                    failures.append({"file": str(path), "error": f"{type(exc).__name__}: {exc}"})
                    first = first or exc
                    continue
                files.append(str(path))
    summary["exports"] = files
    if failures:
        summary["export_errors"] = failures
    summary["audit_anchor"] = anchor(db)
    return first
