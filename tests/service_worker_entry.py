"""A worker process for tests: the real worker loop with the scripted reviewer model.

    python -m tests.service_worker_entry --config cfg.json [--delay S] [--calls-log F]

``cfg.json`` holds ``{"preset": ..., "overrides": {...}}`` (a ServiceConfig). ``--delay``
makes every model call sleep, so a test has time to kill the worker mid-job.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

from service.config import ServiceConfig
from service.jobs import default_handlers
from service.worker import Worker, lower_priority
from tests.service_support import scripted_gateway


def main() -> int:
    """Run the worker until SIGTERM or SIGKILL."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--calls-log", type=Path)
    parser.add_argument("--name", default="sub-worker")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    data = json.loads(args.config.read_text())
    config = ServiceConfig(preset=data["preset"], overrides=data["overrides"])
    handlers = default_handlers(scripted_gateway(args.delay, args.calls_log))
    worker = Worker(config, handlers, name=args.name)
    lower_priority(worker.service.worker_niceness)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        worker.run_forever()
    except KeyboardInterrupt:
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
