"""The one exception tree of recon, and the exit codes every command uses.

Every error recon raises on purpose is a :class:`ReconError`. Each carries an
``exit_code`` (what the CLI exits with) and an optional ``hint`` (what the user
should do next). Messages say *what* went wrong and *where* (file, row, column,
record, setting); they never contain a secret.

Tree::

    ReconError                      exit 1  base class
    ├── UsageError                  exit 2  bad command line; a stage that is not available
    ├── ConfigError                 exit 3  recon.toml or environment invalid (lists every problem)
    │   └── MappingError            exit 3  field mappings invalid against the live schemas
    ├── StoreError                  exit 1  the local SQLite store cannot be opened or migrated
    │   └── LockedError             exit 5  another run holds the store lock
    ├── SourceError                 exit 1  a CRM or file could not be read or written
    │   ├── AuthError               exit 7  authentication failed (token missing, expired, revoked)
    │   ├── RateLimited             exit 1  429 / a concurrency limit after retries
    │   ├── BudgetExhausted         exit 6  the run's call budget, or a CRM's daily limit, is spent (resumable)
    │   ├── MissingField            exit 1  a mapped field or property no longer exists
    │   └── FileFormatError         exit 1  a CRM export file is malformed (file, row, column)
    ├── MatchError                  exit 1  match settings or inputs invalid
    ├── PlanError                   exit 1  the change plan cannot be built
    │   └── NoMatchRun              exit 2  no match run to plan from (also a UsageError)
    ├── ReviewError                 exit 1  a review action is invalid (unknown item, conflict)
    │   └── ReviewerConflict        exit 1  the item was decided again since it was shown
    ├── ApplyError                  exit 1  applying the plan failed as a whole
    │   ├── StaleRecord             exit 1  a CRM record changed since the decision was made
    │   ├── PartialFailure          exit 4  some records failed; the rest were applied
    │   └── WritesHeld              exit 8  a headless apply would send more than [policy]
    │                                       max_writes: nothing was sent
    ├── AuditError                  exit 1  the audit chain does not verify, or an export cannot be made
    └── OutputError                 exit 1  a file a command writes cannot be written there (an
                                            export, match results, a summary, a config, the demo folder)

:class:`ErrorClass` names the kinds of sync error users see grouped (after
HubSpot's connector): ``auth_failed``, ``rate_limited``, ``missing_field``,
``validation``, ``duplicate_rule``, ``permission``, ``not_found``, ``stale``,
``server_error``, ``budget_exhausted``, ``network``, ``unknown``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import traceback
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from pathlib import Path
from urllib.parse import quote, quote_plus

__all__ = [
    "ApplyError",
    "AuditError",
    "AuthError",
    "BudgetExhausted",
    "ConfigError",
    "ErrorClass",
    "ExitCode",
    "FileFormatError",
    "LockedError",
    "MappingError",
    "MatchError",
    "MissingField",
    "NoMatchRun",
    "OutputError",
    "PartialFailure",
    "PlanError",
    "RateLimited",
    "ReconError",
    "ReviewError",
    "ReviewerConflict",
    "SourceError",
    "StaleRecord",
    "StoreError",
    "UsageError",
    "redact",
    "register_secret",
    "write_failure",
]

#: every secret value this process has read or obtained (and its URL-encoded spellings)
_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value (a configured credential, a token a CRM issued) so that
    :func:`redact` blanks it wherever it appears: error texts echo requests (a token
    endpoint's form, an ``Authorization`` header), in plain or URL-encoded spelling, and as
    it reads inside JSON text (quotes and backslashes escaped, non-ASCII as ``\\uXXXX``).

    Values shorter than eight characters are not registered (they would blank common text;
    real tokens, secrets and Salesforce passwords are longer).
    """
    if value and len(value) >= 8:
        _SECRETS.update({value, quote_plus(value), quote(value, safe="")})
        # inside JSON text (stored summaries, --summary files, webhook bodies) a secret with
        # a quote, a backslash or a non-ASCII letter is spelled otherwise
        _SECRETS.update({json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]})


def redact(text: str) -> str:
    """``text`` with every registered secret value replaced by ``***``.

    Examples:
        >>> register_secret("pat-na1-s3cr+t")
        >>> redact("bad token pat-na1-s3cr+t in grant=pat-na1-s3cr%2Bt")
        'bad token *** in grant=***'
    """
    if not _SECRETS or not text:
        return text
    for secret in sorted(_SECRETS, key=len, reverse=True):  # longest first: no partial blanks
        if secret in text:
            text = text.replace(secret, "***")
    return text


class ExitCode(IntEnum):
    """Exit codes shared by every command (pinned; scripts depend on them)."""

    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    CONFIG = 3
    PARTIAL = 4
    LOCKED = 5
    BUDGET = 6
    AUTH = 7
    HELD = 8


class ErrorClass(StrEnum):
    """Kinds of sync error, grouped as users know them from the CRM connectors."""

    AUTH_FAILED = "auth_failed"
    RATE_LIMITED = "rate_limited"
    MISSING_FIELD = "missing_field"
    VALIDATION = "validation"
    DUPLICATE_RULE = "duplicate_rule"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    STALE = "stale"
    SERVER_ERROR = "server_error"
    BUDGET_EXHAUSTED = "budget_exhausted"
    NETWORK = "network"
    UNKNOWN = "unknown"

    @property
    def advice(self) -> str:
        """What a user should do about an error of this class."""
        return _ADVICE[self]

    @property
    def retryable(self) -> bool:
        """Whether retrying the same request later can succeed."""
        return self in {
            ErrorClass.RATE_LIMITED,
            ErrorClass.SERVER_ERROR,
            ErrorClass.NETWORK,
            ErrorClass.BUDGET_EXHAUSTED,
        }


_ADVICE = {
    ErrorClass.AUTH_FAILED: "re-authorise: check the token or credentials the config points at",
    ErrorClass.RATE_LIMITED: "back off and spread the load; lower the schedule frequency or the budget",
    ErrorClass.MISSING_FIELD: "a mapped field is gone or not visible: fix the mapping or the field's permissions",
    ErrorClass.VALIDATION: "the CRM refused the value (validation rule, type or length): fix the value or the rule",
    ErrorClass.DUPLICATE_RULE: "a duplicate rule blocked the write: review the duplicate in the CRM",
    ErrorClass.PERMISSION: "the integration user lacks permission on this object or field",
    ErrorClass.NOT_FOUND: "the record no longer exists in the CRM (deleted or merged)",
    ErrorClass.STALE: "the record changed since review: it went back to the review queue",
    ErrorClass.SERVER_ERROR: "the CRM answered with a server error: retry later",
    ErrorClass.BUDGET_EXHAUSTED: "the API call budget is spent: the next run resumes where this one stopped",
    ErrorClass.NETWORK: "the CRM could not be reached: check the network and the base URL",
    ErrorClass.UNKNOWN: "see the error text",
}


class ReconError(Exception):
    """Base of every error recon raises on purpose.

    Args:
        message: what went wrong and where.
        hint: what to do about it (printed after the message).
    """

    exit_code: int = ExitCode.UNEXPECTED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        # a CRM's error text can echo the request it refused: never a secret in a message
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.hint = redact(hint) if hint else hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UsageError(ReconError):
    """The command line is wrong, or the command's stage is not available."""

    exit_code = ExitCode.USAGE


class ConfigError(ReconError):
    """The configuration is invalid. ``problems`` lists every problem found.

    Each problem is ``(key_path, message)``; ``str()`` shows them all.
    """

    exit_code = ExitCode.CONFIG

    def __init__(
        self,
        message: str,
        *,
        problems: list[tuple[str, str]] | None = None,
        hint: str | None = None,
    ) -> None:
        self.problems = list(problems or [])
        if self.problems:
            lines = "\n".join(f"  - {path}: {msg}" for path, msg in self.problems)
            message = f"{message}\n{lines}"
        super().__init__(message, hint=hint)

    def __str__(self) -> str:
        # below the list: at the end of its last line, the hint read as part of that problem
        if self.hint and self.problems:
            return f"{self.message}\n({self.hint})"
        return super().__str__()


class MappingError(ConfigError):
    """Field mappings do not fit the live schemas (every problem listed)."""


class StoreError(ReconError):
    """The local store cannot be opened, migrated or written."""


class LockedError(StoreError):
    """Another run holds the store lock."""

    exit_code = ExitCode.LOCKED


class SourceError(ReconError):
    """A CRM or export file could not be read or written.

    Attributes:
        error_class: the :class:`ErrorClass` users see this grouped under.
    """

    error_class: ErrorClass = ErrorClass.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        error_class: ErrorClass | None = None,
    ) -> None:
        super().__init__(message, hint=hint if hint is not None else None)
        if error_class is not None:
            self.error_class = error_class
        if self.hint is None:
            self.hint = self.error_class.advice


class AuthError(SourceError):
    """Authentication with a CRM failed."""

    exit_code = ExitCode.AUTH
    error_class = ErrorClass.AUTH_FAILED


class RateLimited(SourceError):
    """The CRM kept answering 429 (or REQUEST_LIMIT_EXCEEDED) after retries.

    Attributes:
        retry_after: seconds the CRM asked to wait, if it said.
    """

    error_class = ErrorClass.RATE_LIMITED

    def __init__(self, message: str, *, retry_after: float | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class BudgetExhausted(SourceError):
    """The per-run API call budget is spent; the next run resumes."""

    exit_code = ExitCode.BUDGET
    error_class = ErrorClass.BUDGET_EXHAUSTED


class MissingField(SourceError):
    """A mapped field or property does not exist (or is not visible)."""

    error_class = ErrorClass.MISSING_FIELD


class FileFormatError(SourceError):
    """A CRM export file is malformed. The message names file, row and column."""

    error_class = ErrorClass.VALIDATION

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        row: int | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = ", ".join(
            part
            for part in (
                f"file {path}" if path else "",
                f"row {row}" if row is not None else "",
                f"column {column!r}" if column else "",
            )
            if part
        )
        super().__init__(
            f"{where}: {message}" if where else message,
            hint=hint or "fix the file and load it again",
        )
        self.path, self.row, self.column = path, row, column


class MatchError(ReconError):
    """Match settings or inputs are invalid."""


class PlanError(ReconError):
    """The change plan cannot be built."""


class NoMatchRun(PlanError, UsageError):
    """There is no match run to plan from: a stage not yet available (exit 2, like
    ``recon match`` before any pull)."""


class ReviewError(ReconError):
    """A review action is invalid."""


class ReviewerConflict(ReviewError):
    """The item was decided by someone else since this reviewer saw it."""


class ApplyError(ReconError):
    """Applying the plan failed as a whole."""


class StaleRecord(ApplyError):
    """A CRM record changed after the decision about it was made."""


class PartialFailure(ApplyError):
    """Some records failed; the rest were applied. ``counts`` maps error class to count."""

    exit_code = ExitCode.PARTIAL

    def __init__(
        self, message: str, *, counts: dict[str, int] | None = None, hint: str | None = None
    ):
        super().__init__(message, hint=hint)
        self.counts = dict(counts or {})


class WritesHeld(ApplyError):
    """A headless apply would send more writes than ``[policy] max_writes``: nothing was sent."""

    exit_code = ExitCode.HELD


class AuditError(ReconError):
    """The audit chain does not verify, or an export cannot be made (a workbook too long for
    a sheet); a file that cannot be written is an :class:`OutputError`."""


class OutputError(ReconError):
    """A file a command writes (an export, ``match-files`` results, a run summary, a config,
    the demo's folder) cannot be written where the command was told to write it. Every
    command says so alike: exit 1, one line naming the path and why, and a hint
    (:meth:`writing` builds it).

    Attributes:
        path: the file (or folder) that could not be written.
    """

    def __init__(
        self, message: str, *, path: str | os.PathLike[str] | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = None if path is None else str(path)

    @classmethod
    def writing(
        cls, what: str, path: str | os.PathLike[str], why: BaseException | str, *, option: str
    ) -> OutputError:
        """The error for ``what`` (``"the audit export"``) that could not be written to
        ``path``, which ``option`` (``"--out"``) named.

        ``why`` is the exception writing raised, or the reason in words. A file standing where
        ``path`` or a folder above it must be a folder is named (the operating system says only
        "File exists" or "Not a directory"); otherwise the operating system's own words are used.

        Examples:
            >>> str(OutputError.writing("the results", "/ro/links.csv", PermissionError(13, "Permission denied"), option="--out"))
            'cannot write the results /ro/links.csv: Permission denied (name another --out in a folder you may write to)'
        """
        target = Path(path)
        if isinstance(why, str):
            reason = why
        else:
            blocking = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
            if isinstance(why, FileExistsError) and target.exists() and not target.is_dir():
                blocking = target  # a folder was to be made where a file is
            reason = (
                write_failure(why) or str(why)
                if blocking is None
                else "it is a file, not a folder"
                if blocking == target
                else f"{blocking} is a file, not a folder"
            )
        return cls(
            f"cannot write {what} {target}: {reason}", path=target, hint=_write_hint(reason, option)
        )


def write_failure(exc: BaseException) -> str | None:
    """Why writing a file failed, in words (None: ``exc`` is not a failure to write).

    Python's own errors carry ``strerror``; polars puts the operating system's words in
    its message, also inside a ``ComputeError`` (a parquet file on a full disk).

    Examples:
        >>> write_failure(PermissionError(13, "Permission denied"))
        'Permission denied'
        >>> write_failure(OSError("Permission denied (os error 13): /sys/x.csv"))
        'Permission denied'
        >>> write_failure(RuntimeError("parquet: underlying IO error: No space left on device (os error 28)"))
        'No space left on device'
        >>> write_failure(ValueError("a bug")) is None
        True
    """
    text = str(exc)
    words = re.search(r"([A-Za-z][A-Za-z ,'-]*?) \(os error \d+\)", text)
    if isinstance(exc, OSError):
        if exc.strerror:
            return exc.strerror
        return words.group(1) if words else (text.split(":")[0] or type(exc).__name__)
    return words.group(1) if words else None


def _write_hint(reason: str, option: str) -> str:
    low = reason.lower()
    if "no space" in low or "quota" in low:
        return "free some disk space, or name a folder on another disk"
    if "permission" in low or "read-only" in low:
        return f"name another {option} in a folder you may write to"
    return f"check the folder, or name another {option}"


def write_crash_log(exc: BaseException) -> Path | None:
    """Write the traceback of an unexpected error (secrets blanked) to a file only this user
    can read, in ``<temp>/recon-logs-<uid>/``; its path, or None when it cannot be written (a
    full disk): the error line is reported all the same."""
    text = redact("".join(traceback.format_exception(exc)))
    uid = os.getuid() if hasattr(os, "getuid") else None
    base = Path(tempfile.gettempdir())
    try:
        folder = base / (f"recon-logs-{uid}" if uid is not None else "recon-logs")
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if uid is not None and (folder.is_symlink() or folder.stat().st_uid != uid):
            folder = Path(tempfile.mkdtemp(prefix="recon-logs-"))  # someone else's: not ours
        path = folder / f"crash-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError:
        return None
    return path


def crash_logged(exc: BaseException) -> str:
    """Write ``exc``'s crash log (:func:`write_crash_log`) and say where it went, for the
    error line of an unexpected error."""
    path = write_crash_log(exc)
    if path is None:
        return "its traceback could not be written (is the temporary folder full?)"
    return f"traceback written to {path}"
