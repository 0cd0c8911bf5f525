"""Where an executor writes a pipeline's output, and how records look after PowerShell serialized them.

Each write is turned into PSRP messages at once and queued for the client's next Receive, so a long pipeline
streams its output while it runs, exactly as a real server does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from psrpcore import ServerPipeline
from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    ProgressRecordType,
    PSCustomObject,
    PSInvocationState,
    PSNoteProperty,
    PSObject,
    add_note_property,
)

from ocsps.lab.wsman.invocation import CategoryLike, PipelineFailure


def _category(value: CategoryLike) -> ErrorCategory:
    if isinstance(value, ErrorCategory):
        return value
    if isinstance(value, int):
        return ErrorCategory(value)
    try:
        return ErrorCategory[value]
    except KeyError:
        raise ValueError(f"unknown ErrorCategory {value!r}") from None


def error_record(
    message: str,
    *,
    category: CategoryLike,
    error_id: str | None,
    target: Any,
    exception_type: str,
    activity: str | None,
) -> ErrorRecord:
    """Build the ErrorRecord PowerShell would produce for an exception of ``exception_type``."""
    exception = NETException(Message=message, HResult=-2146233087)
    type_names = [exception_type]
    for base in ("System.SystemException", "System.Exception", "System.Object"):
        if base not in type_names:
            type_names.append(base)
    exception.PSObject.type_names = type_names
    short_type = exception_type.rsplit(".", 1)[-1]
    target_name = "" if target is None else str(target)
    info = ErrorCategoryInfo(
        Category=_category(category),
        Activity=activity,
        Reason=short_type,
        TargetName=target_name,
        TargetType="" if target is None else type(target).__name__,
    )
    return ErrorRecord(
        Exception=exception,
        CategoryInfo=info,
        TargetObject=target,
        FullyQualifiedErrorId=error_id or short_type,
    )


def ps_object(
    type_names: Sequence[str],
    adapted: Mapping[str, Any] | None = None,
    extended: Mapping[str, Any] | None = None,
    *,
    to_string: str | None = None,
) -> PSObject:
    """An object that looks like a real .NET object after deserialization.

    ``adapted`` become the .NET properties (pypsrp ``adapted_properties``), ``extended`` the
    PowerShell note properties (``extended_properties``). Use it for things like
    ``Microsoft.Rtc.Management.Deployment.Core.NTService`` that scripts return unchanged.
    """
    obj = PSObject()
    names = list(type_names)
    if "System.Object" not in names:
        names.append("System.Object")
    obj.PSObject.type_names = names
    for name, value in (adapted or {}).items():
        obj.PSObject.adapted_properties.append(PSNoteProperty(name, value))
    for name, value in (extended or {}).items():
        add_note_property(obj, name, value)
    if to_string is not None:
        obj.PSObject.to_string = to_string
    return obj


def _to_wire(value: Any) -> Any:
    """A top-level mapping becomes a PSCustomObject, as ``New-Object PSObject -Property`` would give."""
    if isinstance(value, Mapping) and not isinstance(value, PSObject):
        obj = PSCustomObject()
        for key, item in value.items():
            add_note_property(obj, str(key), item)
        return obj
    return value


class PipelineSink:
    """Where an executor writes the results of one pipeline.

    Every write is serialized immediately and queued for the client's next Receive, so output can stream
    over time. Writes return ``False`` (and are dropped) once the pipeline has ended: after a terminating
    error, after the client stopped it, or after the shell was deleted. Long-running executors should
    poll :attr:`cancelled` (or wait on it with :meth:`wait_cancelled`) to honour a client's stop.
    """

    def __init__(self, lock: threading.Condition, pipeline: ServerPipeline) -> None:
        self._lock = lock
        """The shell's condition: psrpcore objects are not thread-safe, and a write wakes waiting Receives."""
        self._pipeline = pipeline
        self.cancelled = threading.Event()
        """Set when the client stops the pipeline or the shell/lab goes away."""

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled.is_set()

    @property
    def closed(self) -> bool:
        """Whether the pipeline has ended, so that an executor can stop producing work nobody reads."""
        with self._lock:
            return self._pipeline.state != PSInvocationState.Running

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Sleep that ends early on cancellation; returns whether the pipeline was cancelled."""
        return self.cancelled.wait(timeout)

    def write(self, value: Any) -> bool:
        """Write one output object: a primitive, a mapping (-> PSCustomObject) or a psrpcore PSObject."""
        wire = _to_wire(value)
        return self._emit(lambda: self._pipeline.write_output(wire))

    def write_object(
        self,
        type_names: Sequence[str],
        adapted: Mapping[str, Any] | None = None,
        extended: Mapping[str, Any] | None = None,
        *,
        to_string: str | None = None,
    ) -> bool:
        """Shortcut for ``write(ps_object(...))``."""
        return self.write(ps_object(type_names, adapted, extended, to_string=to_string))

    def write_error(
        self,
        message: str,
        *,
        category: CategoryLike = "NotSpecified",
        error_id: str | None = None,
        target: Any = None,
        exception_type: str = "System.Management.Automation.RuntimeException",
        activity: str | None = None,
        terminating: bool = False,
    ) -> bool:
        """Write an error record; ``terminating`` ends the pipeline as Failed with this record."""
        record = error_record(
            message,
            category=category,
            error_id=error_id,
            target=target,
            exception_type=exception_type,
            activity=activity,
        )
        if terminating:
            # ServerPipeline has no public "fail": _change_state emits the PIPELINE_STATE Failed message
            # carrying the record, which pypsrp turns into had_errors plus an entry in streams.error.
            return self._emit(lambda: self._pipeline._change_state(PSInvocationState.Failed, record))
        return self._emit(
            lambda: self._pipeline.write_error(
                record.Exception,
                record.CategoryInfo,
                record.TargetObject,
                record.FullyQualifiedErrorId,
            )
        )

    def fail(self, failure: PipelineFailure) -> bool:
        """End the pipeline with ``failure`` as its terminating error."""
        return self.write_error(
            failure.message,
            category=failure.category,
            error_id=failure.error_id,
            target=failure.target,
            exception_type=failure.exception_type,
            activity=failure.activity,
            terminating=True,
        )

    def write_warning(self, message: str) -> bool:
        return self._emit(lambda: self._pipeline.write_warning(message))

    def write_verbose(self, message: str) -> bool:
        return self._emit(lambda: self._pipeline.write_verbose(message))

    def write_debug(self, message: str) -> bool:
        return self._emit(lambda: self._pipeline.write_debug(message))

    def write_information(self, message: Any, source: str = "") -> bool:
        """An information record (``Write-Information``, or ``Write-Host`` on PowerShell 5.0 and later)."""
        return self._emit(lambda: self._pipeline.write_information(message, source))

    def write_progress(
        self,
        activity: str,
        status: str,
        *,
        activity_id: int = 0,
        percent_complete: int = -1,
        current_operation: str | None = None,
        seconds_remaining: int = -1,
        completed: bool = False,
    ) -> bool:
        record_type = ProgressRecordType.Completed if completed else ProgressRecordType.Processing
        return self._emit(
            lambda: self._pipeline.write_progress(
                activity,
                activity_id,
                status,
                current_operation=current_operation,
                percent_complete=percent_complete,
                record_type=record_type,
                seconds_remaining=seconds_remaining,
            )
        )

    def _emit(self, action: Callable[[], None]) -> bool:
        with self._lock:
            if self._pipeline.state != PSInvocationState.Running:
                return False
            action()
            self._lock.notify_all()
            return True

    def complete(self) -> None:
        """Called by the server after the executor returned."""
        with self._lock:
            if self._pipeline.state == PSInvocationState.Running:
                self._pipeline.complete()
            self._lock.notify_all()
