"""Every workaround for moto 5.2.5's Step Functions interpreter, in one place, applied by `apply()`.

moto is pinned exactly (pyproject.toml). `apply()` is idempotent and checks, before changing anything,
that each patched symbol still exists and that every upstream method ported here still has the source
it was ported from (a SHA-256 prefix of `inspect.getsource`): an upgrade fails loudly here, not as a
silently different interpreter. tests/unit/test_moto_patches.py proves the defects are still upstream.

Patches:
1. Glue `.sync` (defect 1): every `glue:startJobRun.sync` task fails with `States.Runtime 'NoneType'
   object has no attribute 'interrupt_all'`; adding `WaitForTaskToken` to the Glue integration's
   supported patterns makes the callback endpoint exist.
   Side effect handled in `_evaluate_with_timeout`: moto makes a task's token and callback endpoint once
   when the state is entered, and every attempt's `.sync` wait then listens on that endpoint, which the
   first attempt interrupts when it ends. A retry would see it already interrupted and fail with
   `States.Timeout` (TaskTimedOut) as soon as its first GetJobRun said RUNNING; so every retry gets a
   token and endpoint of its own, as on AWS (a new `$$.Task.Token` per attempt).
2. Virtual time (defect 2): retry waits, `.sync` polling, `Wait` states and task `TimeoutSeconds` go
   through a `VirtualClock`, which records every retry wait (the base delay and the jittered delay) and
   sleeps `scale` real seconds per virtual second (0: not at all).

How virtual time works: each execution has a timeline, `now = real seconds since the clock first saw
the execution + seconds skipped`. A `clock.sleep(s)` advances it by exactly `s` (really sleeping
`s * scale`). A Task's `TimeoutSeconds` is a deadline on that timeline: the interpreter thread waits for
the task or the deadline, whichever comes first; a task whose sleep would pass the deadline (a mocked
call that takes longer, or `clock.hang()`) moves the timeline to the deadline, the state fails with
`States.Timeout`, and the abandoned call raises `TaskAbandoned` instead of returning. Real work (a
subprocess, a real Lambda handler) advances the timeline at real speed, so real timeouts still hold.
When no engine has installed a clock, a real-time clock (`scale=1`) is used: upstream behaviour.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# moto sources ported below, by the SHA-256 prefix of the upstream method's source (moto 5.2.5).
_PORTED_SOURCES = {
    "RetrierDecl._eval_body": "48463fff19cefa98",
    "ExecutionState._evaluate_with_timeout": "c56deda08a42e98d",
    "WaitFunction._wait_interval": "8f954dee80372b4b",
}
# Upstream methods whose behaviour the patches rely on without replacing them.
_RELIED_ON_SOURCES = {
    "StateTaskServiceCallback._eval_sync": "b8f76de4d5142da1",  # its only sleep is the .sync poll
    "StateTaskServiceCallback._eval_integration_pattern": "3b97ada1d4cb7280",  # the unguarded finally
    # makes the task token (and its callback endpoint) once per state entry, before the retry loop
    "StateTaskServiceCallback._eval_body": "1565ede7010df6af",
}

# How long an abandoned task (its deadline passed) waits for the interpreter to notice, in real seconds.
_ABANDON_GRACE_SECONDS = 30.0


class TaskAbandoned(Exception):
    """Raised inside a task whose TimeoutSeconds passed while it slept or hung on the virtual clock."""


class Wait(NamedTuple):
    """One wait the interpreter asked for."""

    execution: str | None  # execution ARN
    state: str | None
    seconds: float  # what was waited (for a retry: after jitter)
    base: float  # for a retry: IntervalSeconds * BackoffRate**n capped at MaxDelaySeconds (before jitter)
    kind: str  # "retry" | "wait" (a Wait state) | "sleep" (a backend's clock.sleep)
    thread: str


@dataclass
class TaskScope:
    """One attempt of a state with TimeoutSeconds (a Task, Parallel or Map), as seen by the clock."""

    execution: str  # execution ARN
    execution_name: str
    state: str
    attempt: int  # $$.State.RetryCount: 0 for the first attempt
    timeout: float
    started: float  # on the execution's virtual timeline
    deadline: float
    closed: bool = False
    timed_out: bool = False


@dataclass
class _Timeline:
    origin: float = field(default_factory=time.monotonic)
    skipped: float = 0.0

    def now(self) -> float:
        return time.monotonic() - self.origin + self.skipped


class VirtualClock:
    """The interpreter's time: `scale` real seconds per virtual second; records retry waits.

    poll_interval: real seconds between two GetJobRun polls of a `.sync` task (None: moto's 0.5 s).
    Polling is real waiting for a real or mocked job; it is never skipped.
    """

    def __init__(self, scale: float = 0.0, poll_interval: float | None = None) -> None:
        if scale < 0 or (poll_interval is not None and poll_interval < 0):
            raise ValueError("scale and poll_interval must not be negative")
        self.scale = scale
        self.poll_interval = poll_interval
        self.waits: list[Wait] = []
        self.timeout_listeners: list[Callable[[TaskScope], None]] = []
        self._cond = threading.Condition()
        self._timelines: dict[str, _Timeline] = {}
        self._local = threading.local()

    # -- what tests and backends use ------------------------------------------------------------------
    def now(self, execution: str | None = None) -> float:
        """Virtual seconds since the clock first saw `execution` (default: the calling task's)."""
        with self._cond:
            return self._timeline(self._execution_of(execution)).now()

    def retry_waits(self, execution: str | None = None, state: str | None = None) -> list[Wait]:
        with self._cond:
            return [
                w
                for w in self.waits
                if w.kind == "retry" and execution in (None, w.execution) and state in (None, w.state)
            ]

    def current_task(self) -> TaskScope | None:
        """The task attempt the calling thread works for (None outside one)."""
        return getattr(self._local, "scope", None)

    def sleep(
        self,
        seconds: float,
        *,
        kind: str = "sleep",
        execution: str | None = None,
        state: str | None = None,
        base: float | None = None,
    ) -> None:
        """Let `seconds` pass on the execution's timeline; TaskAbandoned if the task's deadline passes."""
        scope = self.current_task()
        if scope is not None and execution in (None, scope.execution):
            execution, state = scope.execution, state or scope.state
        else:
            scope = None
        seconds = max(float(seconds), 0.0)
        with self._cond:
            if math.isfinite(seconds):
                self.waits.append(
                    Wait(
                        execution,
                        state,
                        seconds,
                        seconds if base is None else float(base),
                        kind,
                        threading.current_thread().name,
                    )
                )
            timeline = self._timeline(execution)
            crossing = scope is not None and not scope.closed and timeline.now() + seconds >= scope.deadline
            if crossing:
                assert scope is not None
                advance = max(scope.deadline - timeline.now(), 0.0)
            elif math.isfinite(seconds):
                advance = seconds
            else:
                raise RuntimeError("clock.hang() outside a task attempt: nothing would ever end it")
            started = time.monotonic()
            real = advance * self.scale
            if real > 0:  # really wait, but wake early if the interpreter gives up on this task
                self._cond.wait_for(lambda: scope is not None and scope.closed, timeout=real)
            timeline.skipped += max(advance - (time.monotonic() - started), 0.0)
            self._cond.notify_all()
            if scope is not None and (crossing or scope.closed):
                self._cond.wait_for(lambda: scope.closed, timeout=_ABANDON_GRACE_SECONDS)
                raise TaskAbandoned(f"{scope.state}: TimeoutSeconds {scope.timeout:g} passed; call abandoned")

    def record(self, wait: Wait) -> None:
        with self._cond:
            self.waits.append(wait)

    def skip(self, execution: str | None, seconds: float) -> None:
        """Move the execution's timeline forward without waiting (no deadline check)."""
        with self._cond:
            self._timeline(execution).skipped += max(seconds, 0.0)
            self._cond.notify_all()

    def hang(self) -> None:
        """Never finish: the calling task fails with States.Timeout at its deadline (virtual time)."""
        self.sleep(math.inf)

    # -- what the patched interpreter uses ------------------------------------------------------------
    def open_scope(
        self, execution: str, execution_name: str, state: str, attempt: int, timeout: float
    ) -> TaskScope:
        with self._cond:
            now = self._timeline(execution).now()
            return TaskScope(execution, execution_name, state, attempt, float(timeout), now, now + timeout)

    def bind(self, scope: TaskScope | None) -> None:
        self._local.scope = scope

    def task_done(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def wait_task(self, finished: threading.Event, scope: TaskScope) -> bool:
        """True when the task finished before its deadline; False (timed out) otherwise."""
        with self._cond:
            timeline = self._timeline(scope.execution)
            while not finished.is_set():
                remaining = scope.deadline - timeline.now()
                if remaining <= 0:
                    scope.timed_out = True
                    return False
                self._cond.wait(timeout=remaining)
            return True

    def close_scope(self, scope: TaskScope) -> None:
        with self._cond:
            scope.closed = True
            self._cond.notify_all()
            listeners = list(self.timeout_listeners) if scope.timed_out else []
        for listener in listeners:
            listener(scope)

    def poll(self, seconds: float) -> None:
        """The `.sync` poll interval: real waiting (ends early if the task is abandoned)."""
        real = seconds if self.poll_interval is None else self.poll_interval
        scope = self.current_task()
        if real <= 0:
            return
        with self._cond:
            self._cond.wait_for(lambda: scope is not None and scope.closed, timeout=real)

    def forget(self, execution: str) -> None:
        """Drop an ended execution's timeline (its recorded waits stay)."""
        with self._cond:
            self._timelines.pop(execution, None)

    # -- internals -------------------------------------------------------------------------------------
    def _execution_of(self, execution: str | None) -> str:
        if execution is not None:
            return execution
        scope = self.current_task()
        return scope.execution if scope is not None else ""

    def _timeline(self, execution: str | None) -> _Timeline:
        key = execution or ""
        if key not in self._timelines:
            self._timelines[key] = _Timeline()
        return self._timelines[key]


_REAL_TIME = VirtualClock(scale=1.0)
_active: VirtualClock | None = None
_apply_lock = threading.Lock()
_applied = False


def active_clock() -> VirtualClock:
    """The clock the interpreter uses now: the installed one, else real time (upstream behaviour)."""
    return _active or _REAL_TIME


@contextlib.contextmanager
def use_clock(clock: VirtualClock) -> Iterator[VirtualClock]:
    """Install `clock` for the interpreter for the duration of the block (one clock at a time)."""
    global _active
    apply()
    if _active is not None and _active is not clock:
        raise RuntimeError("another VirtualClock is already installed (one local engine at a time)")
    previous, _active = _active, clock
    try:
        yield clock
    finally:
        _active = previous


def current_task() -> TaskScope | None:
    """The task attempt the calling thread is working for, if any (for backends and mocks)."""
    return active_clock().current_task()


# -- the patches ---------------------------------------------------------------------------------------
def _modules() -> dict[str, Any]:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.exec import execute_state
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        resource,
        state_task_service_callback,
        state_task_service_glue,
    )
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

    return {
        "retrier_decl": retrier_decl,
        "execute_state": execute_state,
        "resource": resource,
        "callback": state_task_service_callback,
        "glue": state_task_service_glue,
        "wait_function": wait_function,
    }


def _source_hash(function: Any) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]


def check_upstream() -> list[str]:
    """What no longer matches the moto source these patches were written against (empty: all good)."""
    try:
        mods = _modules()
    except ImportError as error:
        return [f"moto's Step Functions parser moved: {error}"]
    problems = []
    owners = {
        "RetrierDecl": getattr(mods["retrier_decl"], "RetrierDecl", None),
        "ExecutionState": getattr(mods["execute_state"], "ExecutionState", None),
        "WaitFunction": getattr(mods["wait_function"], "WaitFunction", None),
        "StateTaskServiceCallback": getattr(mods["callback"], "StateTaskServiceCallback", None),
    }
    for name, expected in {**_PORTED_SOURCES, **_RELIED_ON_SOURCES}.items():
        owner_name, method = name.split(".")
        owner = owners[owner_name]
        # A patched method is stored on the class as `_ticketflow_original_<name>` once applied.
        function = getattr(owner, f"_ticketflow_original{method}", None) or getattr(owner, method, None)
        if function is None:
            problems.append(f"{name} no longer exists")
        elif _source_hash(function) != expected:
            problems.append(
                f"{name} changed upstream (source hash {_source_hash(function)} != {expected}):"
                " re-port the patch in ticketflow/local/moto_patches.py"
            )
    patterns = getattr(mods["glue"], "_SUPPORTED_INTEGRATION_PATTERNS", None)
    if not isinstance(patterns, set) or getattr(mods["resource"], "ResourceCondition", None) is None:
        problems.append(
            "state_task_service_glue._SUPPORTED_INTEGRATION_PATTERNS (a set) or "
            "ResourceCondition no longer exists"
        )
    if getattr(mods["callback"], "time", None) is not time and not isinstance(
        mods["callback"].time, _PollTime
    ):
        problems.append("state_task_service_callback no longer imports `time` (the .sync poll sleep moved)")
    if getattr(mods["callback"], "_DELAY_SECONDS_SYNC_CONDITION_CHECK", None) is None:
        problems.append("state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK no longer exists")
    return problems


class _PollTime:
    """Stands in for the `time` module inside state_task_service_callback: its one sleep is the poll."""

    def sleep(self, seconds: float) -> None:
        active_clock().poll(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def apply() -> None:
    """Apply every patch once (idempotent); raise RuntimeError if moto no longer matches."""
    global _applied
    with _apply_lock:
        if _applied:
            return
        problems = check_upstream()
        if problems:
            raise RuntimeError(
                "moto's Step Functions interpreter changed; patches not applied:\n  " + "\n  ".join(problems)
            )
        mods = _modules()
        # Defect 1: the unguarded `callback_endpoint.interrupt_all()` needs an endpoint, which exists
        # only for integrations that list WaitForTaskToken (the set is shared with every Glue task).
        mods["glue"]._SUPPORTED_INTEGRATION_PATTERNS.add(mods["resource"].ResourceCondition.WaitForTaskToken)
        # Defect 2: `time.sleep(_DELAY_SECONDS_SYNC_CONDITION_CHECK)` is the module's only use of time.
        mods["callback"].time = _PollTime()
        _replace(mods["retrier_decl"].RetrierDecl, "_eval_body", _retrier_eval_body)
        _replace(mods["execute_state"].ExecutionState, "_evaluate_with_timeout", _evaluate_with_timeout)
        _replace(mods["wait_function"].WaitFunction, "_wait_interval", _wait_interval)
        _applied = True


def is_applied() -> bool:
    return _applied


def _replace(owner: type, name: str, function: Callable[..., Any]) -> None:
    setattr(owner, f"_ticketflow_original{name}", getattr(owner, name))
    setattr(owner, name, function)


def _context(env: Any) -> tuple[str, str, str | None, int]:
    data = env.states.context_object.context_object_data
    state = data.get("State") or {}
    return data["Execution"]["Id"], data["Execution"]["Name"], state.get("Name"), state.get("RetryCount", 0)


# Ported from moto 5.2.5 RetrierDecl._eval_body: identical except that the delay is measured before and
# after jitter and slept on the virtual clock (upstream: time.sleep(interval_seconds)).
def _retrier_eval_body(self: Any, env: Any) -> None:
    from moto.stepfunctions.parser.asl.component.common.retry.max_attempts_decl import MaxAttemptsOutcome
    from moto.stepfunctions.parser.asl.component.common.retry.retrier_outcome import RetrierOutcome

    self.error_equals.eval(env)
    if not env.stack.pop():
        env.stack.append(RetrierOutcome.Skipped)
        return
    self.max_attempts.eval(env=env)
    if env.stack.pop() == MaxAttemptsOutcome.EXHAUSTED:
        env.stack.append(RetrierOutcome.Failed)
        return
    self.interval_seconds.eval(env=env)
    self.backoff_rate.eval(env=env)  # interval * rate**n
    self.max_delay_seconds.eval(env=env)  # min(..., MaxDelaySeconds)
    base = env.stack[-1]
    self.jitter_strategy.eval(env=env)  # FULL: uniform(0, base); NONE: unchanged
    delay: float = env.stack.pop()
    execution, _, state, _ = _context(env)
    active_clock().sleep(delay, kind="retry", execution=execution, state=state, base=base)
    env.stack.append(RetrierOutcome.Executed)


# Ported from moto 5.2.5 ExecutionState._evaluate_with_timeout: identical except that the deadline is
# on the virtual clock (upstream: terminated_event.wait(timeout_seconds)), the task thread is bound to its
# TaskScope (so backends know the state and clock.sleep knows the deadline), and a task abandoned at its
# deadline is released only after its exception slot was read (so it cannot replace States.Timeout), and a
# retry of a callback-capable task gets its own task token and callback endpoint (`_fresh_task_token`).
def _evaluate_with_timeout(self: Any, env: Any) -> None:
    import copy

    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import EvalTimeoutError
    from moto.stepfunctions.parser.utils import TMP_THREADS

    self.timeout.eval(env=env)
    timeout_seconds: int = env.stack.pop()

    frame = env.open_frame()
    frame.states.reset(input_value=env.states.get_input())
    frame.stack = copy.deepcopy(env.stack)
    execution, execution_name, state, attempt = _context(env)
    if attempt > 0:
        _fresh_task_token(self, frame)
    execution_outputs: list[Any] = []
    execution_exceptions: list[Exception | None] = [None]
    terminated_event = threading.Event()
    clock = active_clock()
    scope = clock.open_scope(execution, execution_name, state or self.name, attempt, timeout_seconds)

    def _exec_and_notify() -> None:
        clock.bind(scope)
        try:
            self._eval_execution(frame)
            execution_outputs.extend(frame.stack)
        except Exception as ex:
            execution_exceptions.append(ex)
        finally:
            clock.bind(None)
        terminated_event.set()
        clock.task_done()

    thread = threading.Thread(
        target=_exec_and_notify, daemon=True, name=f"task-{execution_name}-{scope.state}-{attempt}"
    )
    TMP_THREADS.append(thread)
    thread.start()

    finished_on_time = clock.wait_task(terminated_event, scope)
    frame.set_ended()
    env.close_frame(frame)

    execution_exception = execution_exceptions.pop()
    clock.close_scope(scope)
    if execution_exception:
        raise execution_exception

    if not finished_on_time:
        raise EvalTimeoutError()

    execution_output = execution_outputs.pop()
    env.stack.append(execution_output)

    if not self._is_language_query_jsonpath():
        env.states.set_result(execution_output)

    if self.assign_decl:
        self.assign_decl.eval(env=env)

    if self.result_selector:
        self.result_selector.eval(env=env)

    if self.result_path:
        self.result_path.eval(env)
    else:
        res = env.stack.pop()
        env.states.reset(input_value=res)


def _fresh_task_token(state: Any, frame: Any) -> None:
    """Give this attempt of a callback-capable task its own task token and callback endpoint.

    StateTaskServiceCallback._eval_body makes one token when the state is entered; the retry loop runs
    inside it, so every attempt would share the endpoint that the first attempt's `finally:
    callback_endpoint.interrupt_all()` left interrupted. A later `.sync` attempt's WaitForTaskToken
    listener then returns at once (CallbackOutcomeTimedOut), and the attempt fails with States.Timeout at
    its first poll of a run still RUNNING. The frame has its own context object, so the new token is this
    attempt's alone (the state's own token is still popped by `_eval_body` when the state ends).
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
        ResourceCondition,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )

    if (
        isinstance(state, StateTaskServiceCallback)
        and state._is_integration_pattern()
        and ResourceCondition.WaitForTaskToken in state._supported_integration_patterns
    ):
        frame.callback_pool_manager.add(frame.states.context_object.update_task_token())


# Replaces moto 5.2.5 WaitFunction._wait_interval: under the real-time clock, upstream's code runs as
# is; under a virtual clock the Wait state's seconds are recorded, waited `scale` real seconds per
# second (still interruptible by StopExecution, as upstream), and the rest is skipped.
def _wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
    clock = active_clock()
    if clock is _REAL_TIME:
        return type(self)._ticketflow_original_wait_interval(self, env=env, wait_seconds=wait_seconds)
    execution, _, state, _ = _context(env)
    seconds = max(float(wait_seconds), 0.0)
    clock.record(Wait(execution, state, seconds, seconds, "wait", threading.current_thread().name))
    started = time.monotonic()
    deadline = started + seconds * clock.scale
    while env.is_running() and (left := deadline - time.monotonic()) > 0:
        env.program_state_event.wait(left)
    if env.is_running():
        clock.skip(execution, seconds - (time.monotonic() - started))
    return None
