"""Process-pool workers that stop with their driver.

Two things a pool must do for an interrupted run to end promptly and leave nothing behind:

* the driver, on SIGINT or SIGTERM, **terminates** its workers instead of waiting for the
  units they are running (:func:`terminate_pool`);
* a worker whose driver died without doing so (``kill -9``) **notices** and exits, rather
  than finishing a unit nobody will read (:func:`watch_parent`, a pool initializer).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor

#: Seconds between a worker's checks that its driver is still alive.
PARENT_POLL_S = 1.0


def _exit_when_orphaned(parent_pid: int, poll_s: float) -> None:
    while True:
        if os.getppid() != parent_pid:  # re-parented: the driver is gone
            os._exit(1)
        time.sleep(poll_s)


def watch_parent(parent_pid: int, poll_s: float = PARENT_POLL_S) -> None:
    """Pool initializer: ignore Ctrl-C (the driver decides) and exit once the driver is gone.

    Args:
        parent_pid: the driver's process id (``os.getpid()`` in the driver).
        poll_s: seconds between checks.
    """
    # A terminal's Ctrl-C reaches the whole process group; the driver handles it and
    # terminates the workers, so a worker does not print a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(
        target=_exit_when_orphaned, args=(parent_pid, poll_s), daemon=True, name="watch-parent"
    ).start()


def terminate_pool(pool: ProcessPoolExecutor) -> None:
    """Stop ``pool`` now: cancel what has not started and terminate the running workers."""
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14+
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
