"""The worker: claims jobs from the queue and runs up to ``service.jobs_per_worker`` of them
at once, each in its own thread, with its handler.

    python -m service.worker [--preset P] [--set section.field=value ...] [--once]

While a job runs, a lease thread renews the claim every ``lease_s / 3`` and notices a
cancellation or a lost claim; the handler's next progress report then stops it. A worker
that is killed leaves its jobs ``running``; the next worker sees that the process is gone
(or the leases ran out), claims the jobs again and resumes each from its graph checkpoint.
On SIGTERM or Ctrl-C the worker hands every job it runs back to the queue and exits.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from core.settings import ClusterSettings
from gateway._litellm import load_litellm
from gateway.errors import AutoscholarError, MissingDependencyError
from service.config import ServiceConfig, ServicePaths, service_paths
from service.errors import ClaimLostError, JobCancelledError
from service.jobs import (
    GatewayFactory,
    JobContext,
    JobHandler,
    RunLauncher,
    default_gateway,
    default_handlers,
    pipeline_launcher,
)
from service.logs import configure_logging, job_logging
from service.store import JobRecord, JobStore
from service.usage import job_usage

log = logging.getLogger("service.worker")


class Lease:
    """Renews a job's claim in a background thread; records cancellation or a lost claim."""

    def __init__(
        self,
        store: JobStore,
        job: JobRecord,
        lease_s: float,
        max_wall_s: float | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.store, self.job, self.lease_s = store, job, lease_s
        self.max_wall_s, self.on_lost = max_wall_s, on_lost
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, daemon=True, name="lease")
        if job.cancel_requested:
            self.cancelled.set()

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            self.renew()

    def renew(self) -> None:
        """Extend the lease once; note a cancellation or a lost claim."""
        assert self.job.claim is not None
        self.note(self.store.renew(self.job.id, self.job.claim, self.lease_s, self.max_wall_s))

    def note(self, state: bool | None) -> None:
        """What the job row said: None, the claim is lost (another worker holds the job, or
        it was failed for running past its wall-clock limit); True, cancellation was asked."""
        if state is None:
            self.lost.set()
            if self.on_lost is not None:
                self.on_lost()
        elif state:
            self.cancelled.set()

    def check(self) -> None:
        """Raise when the handler should stop."""
        if self.lost.is_set():
            raise ClaimLostError(f"job {self.job.id}: another worker holds it now")
        if self.cancelled.is_set():
            raise JobCancelledError(f"job {self.job.id} was cancelled by its owner")


@dataclass
class Worker:
    """Claims and runs jobs; ``handlers`` maps a job kind to its handler."""

    config: ServiceConfig
    handlers: Mapping[str, JobHandler] = field(default_factory=default_handlers)
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    # Called when a running job's claim is lost; the worker process (``main``) exits there,
    # so nothing the job started (its boxed runs die with their parent) outlives it.
    on_lost: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        settings = self.config.settings()
        self.service = settings.service
        self.paths: ServicePaths = service_paths(settings)
        self.store = JobStore(self.paths.database)
        # Jobs claimed and not yet finished, by id: what SIGTERM hands back to the queue.
        self.in_flight: dict[str, JobRecord] = {}
        self._in_flight_lock = threading.Lock()

    def claim_next(self) -> JobRecord | None:
        """Claim the next job for this worker, or None when the queue has none."""
        self.store.expire_dead_workers()
        service = self.service
        job = self.store.claim(
            self.name, service.lease_s, service.max_attempts, service.job_max_wall_s
        )
        if job is not None:
            with self._in_flight_lock:
                self.in_flight[job.id] = job
        return job

    def run_once(self) -> bool:
        """Claim and run one job in this thread; False when the queue had none."""
        job = self.claim_next()
        if job is None:
            return False
        self.run_claimed(job)
        return True

    def run_claimed(self, job: JobRecord) -> None:
        """Run a job this worker claimed, then forget it."""
        try:
            self.execute(job)
        finally:
            with self._in_flight_lock:
                self.in_flight.pop(job.id, None)

    def run_forever(self, stop: threading.Event | None = None) -> None:
        """Run up to ``jobs_per_worker`` jobs at once until ``stop`` is set; on Ctrl-C or
        SIGTERM hand every running job back to the queue and re-raise."""
        stop = stop or threading.Event()
        warm_up()
        slots = self.service.jobs_per_worker
        log.info("worker %s (%d jobs at once) watching %s", self.name, slots, self.paths.database)
        pool = ThreadPoolExecutor(slots, thread_name_prefix=f"job-{self.name}")
        running: set[Future[None]] = set()
        try:
            while not stop.is_set():
                running = self._fill(pool, running, slots, stop)
        except KeyboardInterrupt:
            self.release_all("worker stopped")
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        wait(running)
        pool.shutdown()

    def _fill(
        self,
        pool: ThreadPoolExecutor,
        running: set[Future[None]],
        slots: int,
        stop: threading.Event,
    ) -> set[Future[None]]:
        """Wait for a free slot, claim a job into it; idle for ``poll_interval_s`` if none."""
        poll = self.service.poll_interval_s
        if len(running) >= slots:
            done, _ = wait(running, timeout=poll, return_when=FIRST_COMPLETED)
            return running - done
        job = self.claim_next()
        if job is None:
            stop.wait(poll)
            return {f for f in running if not f.done()}
        return {*running, pool.submit(self.run_claimed, job)}

    def release_all(self, note: str) -> None:
        """Hand every job this worker runs back to the queue (conditional on each claim)."""
        with self._in_flight_lock:
            jobs = list(self.in_flight.values())
        for job in jobs:
            assert job.claim is not None
            self.store.release(job.id, job.claim, note)

    def execute(self, job: JobRecord) -> None:
        """Run ``job`` under a lease and record its outcome once, conditional on the claim;
        every log line meanwhile carries the job id."""
        with job_logging(job.id):
            self._execute(job)

    def _finish(self, job: JobRecord, status: Any, **outcome: Any) -> bool:
        """Record the outcome with the job's provider usage, summed from its ledger."""
        assert job.claim is not None
        usage = job_usage(self.paths, job.id, job.kind)
        return self.store.finish(job.id, job.claim, status, usage=usage, **outcome)

    def _execute(self, job: JobRecord) -> None:
        assert job.claim is not None
        started = time.perf_counter()
        log.info("job %s (%s) claimed, attempt %d", job.id, job.kind, job.attempts)
        lease = Lease(
            self.store, job, self.service.lease_s, self.service.job_max_wall_s, self.on_lost
        )
        with lease:
            try:
                result = self._run_handler(job, lease)
            except ClaimLostError:
                log.warning("job %s: claim lost to another worker; result discarded", job.id)
                return
            except JobCancelledError:
                self._finish(job, "cancelled", error="cancelled by its owner")
                return
            except AutoscholarError as exc:
                self._failed(job, exc)
                return
            except Exception as exc:  # a bug: record it on the job rather than lose the job
                log.exception("job %s: unexpected error", job.id)
                self._record_failure(job, internal_error(exc, self.paths, job))
                return
            except KeyboardInterrupt:
                self.store.release(job.id, job.claim, "worker stopped")
                raise
        if self._finish(job, "done", result=result):
            log.info("job %s done in %.1f s", job.id, time.perf_counter() - started)
        else:
            log.warning("job %s: claim lost before completion; result discarded", job.id)

    def _run_handler(self, job: JobRecord, lease: Lease) -> dict[str, Any]:
        lease.check()
        handler = self.handlers.get(job.kind)
        if handler is None:
            raise AutoscholarError(f"this worker has no handler for {job.kind!r} jobs")
        settings = self.config.for_job(job.params.get("preset"), job.params.get("overrides", {}))
        assert job.claim is not None
        claim = job.claim

        def report(progress: dict[str, Any]) -> None:
            lease.check()
            lease.note(self.store.set_progress(job.id, claim, progress))
            lease.check()

        context = JobContext(
            job=job, settings=settings, paths=self.paths, report=report, check=lease.check
        )
        return handler.run(context)

    def _failed(self, job: JobRecord, exc: AutoscholarError) -> None:
        assert job.claim is not None
        if exc.retryable and job.attempts < self.service.max_attempts:
            log.warning("job %s: %s; back in the queue", job.id, exc)
            self.store.release(job.id, job.claim, f"retryable: {exc}")
            return
        self._record_failure(job, f"{type(exc).__name__}: {exc}")

    def _record_failure(self, job: JobRecord, error: str) -> None:
        assert job.claim is not None
        log.warning("job %s failed: %s", job.id, error)
        self._finish(job, "failed", error=error)


def warm_up() -> None:
    """Import what every job needs once, before the first job rather than during it."""
    load_litellm()
    with suppress(ImportError, OSError):  # without Pango, jobs say so when they render
        import weasyprint  # noqa: F401


def internal_error(exc: Exception, paths: ServicePaths, job: JobRecord) -> str:
    """The message recorded for a failure we did not expect."""
    return (
        f"internal error ({type(exc).__name__}: {exc}); the job's files are kept in "
        f"{paths.job_dir(job.id)}; please report this with the worker's log"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The worker's command line."""
    parser = argparse.ArgumentParser(prog="python -m service.worker", description=__doc__)
    parser.add_argument("--preset", help="debug, default, quality or a JSON path")
    parser.add_argument(
        "--set", dest="set_", action="append", default=[], help="section.field=value"
    )
    parser.add_argument("--once", action="store_true", help="run at most one job, then exit")
    parser.add_argument("--name", help="worker name shown on jobs (default host:pid)")
    parser.add_argument(
        "--log-json",
        action="store_true",
        help="log one JSON object per line, with the job id (service.log_format=json)",
    )
    return parser.parse_args(argv)


def lower_priority(niceness: int) -> None:
    """Run this process at a lower CPU priority (the API answers people; jobs can wait)."""
    if niceness > 0:
        with suppress(OSError):
            os.nice(niceness)


def _stop_on_sigterm() -> None:
    """SIGTERM behaves like Ctrl-C: the job goes back to the queue, the worker exits."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


EXIT_CLAIM_LOST = 3


def exit_lost() -> None:
    """The running job is no longer this worker's (failed past its wall-clock limit, or
    claimed by another worker): stop everything now. The boxed runs die with this process
    and ``scientist serve`` starts a fresh worker (a non-zero exit)."""
    log.warning("the running job's claim is lost; this worker exits and is restarted")
    atexit._run_exitfuncs()  # stops the embedded model server this worker started
    sys.stderr.flush()
    os._exit(EXIT_CLAIM_LOST)


def cluster_launcher(cluster: ClusterSettings, launcher: RunLauncher) -> RunLauncher:
    """``launcher``, or the Ray cluster's when ``cluster.service_runs`` is on: run jobs then
    go to the cluster, review jobs stay in this worker."""
    if not cluster.service_runs:
        return launcher
    try:  # Ray is the optional `cluster` extra: loaded only when the operator asks for it
        from scientist.runs.ray_executor import RayRunLauncher
    except ImportError as exc:
        raise MissingDependencyError(
            "cluster.service_runs needs Ray: pip install 'autoscholar[cluster]'."
        ) from exc
    return RayRunLauncher(cluster)


def main(
    argv: list[str] | None = None,
    *,
    gateway_factory: GatewayFactory = default_gateway,
    launcher: RunLauncher = pipeline_launcher,
) -> int:
    """Run a worker until stopped. Tests inject ``gateway_factory`` (a scripted model)."""
    args = parse_args(argv)
    try:
        config = ServiceConfig.from_flags(args.preset, args.set_)
        launcher = cluster_launcher(config.settings().cluster, launcher)
        worker = Worker(config, default_handlers(gateway_factory, launcher), on_lost=exit_lost)
    except AutoscholarError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    configure_logging("json" if args.log_json else worker.service.log_format)
    if args.name:
        worker.name = args.name
    lower_priority(worker.service.worker_niceness)
    _stop_on_sigterm()
    try:
        if args.once:
            worker.run_once()
        else:
            worker.run_forever()
    except KeyboardInterrupt:
        log.info("worker %s stopping", worker.name)
        atexit._run_exitfuncs()  # stops the embedded model server this worker started
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # not sys.exit: threads of an interrupted graph may wait on a model call
    return 0


if __name__ == "__main__":
    sys.exit(main())
