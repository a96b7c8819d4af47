"""Run one task per layer: in this process, in local worker processes, or as Ray tasks.

Problem: a whole model is a list of independent per-layer jobs (load, prune,
pack). One layer's fault must stay that layer's (any exception becomes one
line naming it), a worker that dies (killed, out of memory) must cost that
layer a retry and then a one-line failure while the others finish, Ctrl-C
must stop the whole run, and ``--jobs N`` or a Ray cluster must give the same
per-layer answers as one process (each task is a pure function of its input:
the solvers decide by their deterministic work budget and seed).

Method: :func:`run` yields a :class:`Done` per task as it completes.

- ``jobs=1``: in this process, in order.
- ``jobs>1``: one forked process per task, at most ``jobs`` at a time, each
  sending its answer back through a pipe; a process that exits without one
  died, and its task is started again up to ``retries`` times. On Ctrl-C the
  parent passes SIGINT on to the running workers, keeps the answers they
  send back within :data:`GRACE` seconds, and stops the rest.
- ``executor="ray"``: one Ray task per layer (``ray.remote(max_retries=retries)``:
  Ray re-runs a task whose worker died); joins the cluster at ``address``
  (``ray.init(address=...)``), or uses the running Ray session, or starts a
  local one. Ray is the optional ``[cluster]`` extra.

:func:`available_memory` reads MemAvailable from ``/proc/meminfo``, the
figure the per-layer memory guards compare their estimates with.

Reference: Python ``multiprocessing`` (fork context, ``connection.wait``);
Ray core, tasks and fault tolerance, https://docs.ray.io/en/latest/ray-core/fault_tolerance/tasks.html .
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any, Callable, Iterable, Iterator

from .errors import ArrangeError, LayerError

__all__ = ["EXECUTORS", "Done", "available_memory", "describe_error", "run"]

EXECUTORS = ("local", "ray")


@dataclass
class Done:
    """One finished task: its position in the input, and the value or a one-line error."""

    index: int
    value: Any = None
    error: str | None = None


def describe_error(exc: BaseException) -> str:
    """One line for any exception a layer raised: the message of an ArrangeError, else type and message."""
    if isinstance(exc, LayerError):
        return exc.problem
    if isinstance(exc, ArrangeError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return f"out of memory (MemoryError{': ' + str(exc) if str(exc) else ''})"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _call(fn: Callable, item) -> tuple[str, Any]:
    """("ok", fn(item)) or ("error", one line); never raises an Exception (Ctrl-C passes through)."""
    try:
        return "ok", fn(item)
    except Exception as exc:  # noqa: BLE001 - per-layer isolation: any fault is that layer's
        return "error", describe_error(exc)


def available_memory() -> int | None:
    """Bytes the kernel says can be allocated without swapping (MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def run(fn: Callable, items: Iterable, jobs: int = 1, executor: str = "local", address: str | None = None,
        retries: int = 1, stop: Callable[[], bool] | None = None) -> Iterator[Done]:
    """``fn`` on every item; yields :class:`Done` in completion order (``index`` says which).

    ``fn`` must be a module-level function for ``executor="ray"`` (pickled by
    reference). Ctrl-C (a KeyboardInterrupt while waiting) asks the running
    local workers to stop (SIGINT), yields the answers they send back within
    :data:`GRACE` seconds (a solver that returns its best answer on Ctrl-C),
    stops the rest and re-raises; in this process, ``stop()`` true after a
    task (its solver caught the Ctrl-C) raises KeyboardInterrupt before the next.
    """
    items = list(items)
    if executor not in EXECUTORS:
        raise ArrangeError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if executor == "ray":
        yield from _run_ray(fn, items, address, retries)
    elif jobs > 1 and len(items) > 1:
        yield from _run_processes(fn, items, jobs, retries)
    else:
        for i, item in enumerate(items):
            if stop is not None and stop():
                raise KeyboardInterrupt
            status, value = _call(fn, item)
            yield Done(i, value) if status == "ok" else Done(i, error=value)


#: seconds the workers get after Ctrl-C to send back the best answers their solvers return
GRACE = 5.0


def _child(conn, fn: Callable, item) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        answer = _call(fn, item)
    except KeyboardInterrupt:   # stopped with no answer to give back
        answer = ("interrupted", None)
    try:
        conn.send(answer)
    except Exception as exc:  # noqa: BLE001 - an answer that cannot be pickled is that layer's fault
        conn.send(("error", f"cannot send the result back: {describe_error(exc)}"))
    conn.close()


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _run_processes(fn: Callable, items: list, jobs: int, retries: int) -> Iterator[Done]:
    ctx = mp.get_context("fork")   # the task's arrays are inherited, not pickled
    pending = deque((i, 0) for i in range(len(items)))
    running: dict = {}   # process sentinel -> (process, connection, index, attempt)
    try:
        try:
            yield from _schedule(ctx, fn, items, jobs, retries, pending, running)
        except KeyboardInterrupt:
            yield from _drain(running)
            raise
    finally:
        for proc, conn, _, _ in running.values():
            proc.kill()
            proc.join()
            conn.close()


def _schedule(ctx, fn: Callable, items: list, jobs: int, retries: int, pending: deque,
              running: dict) -> Iterator[Done]:
    """Start workers as slots free up; yield each answer; start a task whose worker died again."""
    while pending or running:
        while pending and len(running) < jobs:
            i, attempt = pending.popleft()
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(send, fn, items[i]), daemon=True)
            proc.start()
            send.close()
            running[proc.sentinel] = (proc, recv, i, attempt)
        ready = set(wait([c for _, c, _, _ in running.values()] + list(running)))
        for sentinel, (proc, conn, i, attempt) in list(running.items()):
            if conn not in ready and sentinel not in ready:
                continue
            try:
                answer = conn.recv() if conn.poll() else None
            except (EOFError, OSError):   # the pipe closed without an answer: the worker is dying
                answer = None
            proc.join()   # it sent its answer (or closed the pipe) last: it is exiting
            conn.close()
            del running[sentinel]
            if answer is not None:
                status, value = answer
                yield Done(i, value) if status == "ok" else Done(i, error=value)
            elif attempt < retries:
                pending.appendleft((i, attempt + 1))
            else:
                yield Done(i, error=f"worker process died ({_death(proc.exitcode)}), "
                                    f"{attempt + 1} attempt{'s' if attempt else ''}")


def _drain(running: dict) -> Iterator[Done]:
    """After Ctrl-C: SIGINT to every running worker, and the answers they send within GRACE seconds."""
    for proc, _, _, _ in running.values():
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + GRACE
    while running and deadline > time.monotonic():
        ready = wait([c for _, c, _, _ in running.values()], timeout=deadline - time.monotonic())
        if not ready:
            break
        for sentinel, (proc, conn, i, _) in list(running.items()):
            if conn not in ready:
                continue
            try:
                status, value = conn.recv()
            except (EOFError, OSError):   # died without an answer
                status, value = "died", None
            proc.join()
            conn.close()
            del running[sentinel]
            if status == "ok":
                yield Done(i, value)
            elif status == "error":
                yield Done(i, error=value)


def _run_ray(fn: Callable, items: list, address: str | None, retries: int) -> Iterator[Done]:
    try:
        import ray
    except ImportError:
        raise ArrangeError("--executor ray needs Ray (pip install 'arrange[cluster]')") from None
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, log_to_driver=False)
        except Exception as exc:  # noqa: BLE001 - no cluster at that address, a version mismatch, ...
            raise ArrangeError(f"cannot start or join Ray{f' at {address}' if address else ''}: "
                               f"{describe_error(exc)}") from None
    task = ray.remote(max_retries=retries, retry_exceptions=False)(_call)
    refs = {task.remote(fn, item): i for i, item in enumerate(items)}
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                i = refs.pop(ref)
                try:
                    status, value = ray.get(ref)
                except ray.exceptions.RayError as exc:   # the worker died more than `retries` times
                    yield Done(i, error=f"Ray task failed: {describe_error(exc).splitlines()[0][:300]}")
                    continue
                yield Done(i, value) if status == "ok" else Done(i, error=value)
    finally:
        for ref in refs:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
