"""The CPU thread policy: how many threads torch computes with, and how they wait.

torch's default is one OpenMP thread per core, each spinning while it waits for work.
On a computer where anything else is busy (a browser, a build, the editor's own window)
the spinning threads fight it for the cores: measured on 2 cores with one busy process,
a shapes edit fell from 13.3 to 0.48 steps/s. Passive waiting keeps the speed
(bench/bench_threads.py; docs/INSTALL.md has the numbers). OpenMP reads its variables
once, when torch is imported, so every entry point (`foi`, `foi-desktop`, the bundle)
calls `apply` before anything imports torch; called later, it still sets torch's counts."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from .errors import SettingsError

WAIT_VARIABLE = "OMP_WAIT_POLICY"
THREADS_VARIABLE = "OMP_NUM_THREADS"
MAX_THREADS = 256
# UNet weights × latent cells under which one thread beats several: a passive thread's
# wake-up costs more than it saves on ops of microseconds. Measured (bench_threads): the
# shapes model (5.4 M × 16², 1.4e9) ran 29–33 steps/s on one thread, 14 on two; the
# SD-1.5-sized UNet at 256 px (860 M × 32², 8.8e11) 0.21 on one, 0.34 on two.
SMALL_WORK = 2e10


@dataclass(frozen=True)
class ThreadPolicy:
    threads: int  # torch's intra-op threads
    wait: str  # OpenMP's wait policy, "PASSIVE" unless the user set another
    source: str  # where the count came from: "setting", "environment" or "automatic"

    def describe(self) -> str:
        return f"{self.threads} CPU thread{'s' if self.threads != 1 else ''} ({self.source}, {self.wait.lower()} wait)"


def cores() -> int:
    """The physical cores this process may run on (hyper-threads share a core's arithmetic,
    so torch gains nothing from them)."""
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:  # macOS, Windows: no affinity; count what the OS reports
        return os.cpu_count() or 1
    physical = set()
    for cpu in allowed:
        topology = f"/sys/devices/system/cpu/cpu{cpu}/topology/"
        try:
            with open(topology + "physical_package_id") as package, open(topology + "core_id") as core:
                physical.add((package.read().strip(), core.read().strip()))
        except OSError:
            physical.add(("cpu", str(cpu)))
    return max(1, len(physical))


def check_threads(threads) -> int:
    """A user's thread count (0 = automatic), or SettingsError."""
    if isinstance(threads, bool) or not isinstance(threads, int) or not 0 <= threads <= MAX_THREADS:
        raise SettingsError(f"CPU threads must be a whole number from 0 (automatic) to {MAX_THREADS}, not {threads!r}.")
    return threads


def _environment_threads() -> int | None:
    value = os.environ.get(THREADS_VARIABLE, "").split(",")[0].strip()
    return int(value) if value.isdigit() and 1 <= int(value) <= MAX_THREADS else None


def choose(threads: int = 0, leave_free: int = 0) -> ThreadPolicy:
    """The policy for a user's choice (0: automatic). Automatic is every core, less
    `leave_free` kept for a window's UI thread; an OMP_NUM_THREADS the user set wins
    over automatic, an explicit choice over both."""
    threads = check_threads(threads)
    wait = os.environ.get(WAIT_VARIABLE, "").strip().upper() or "PASSIVE"
    if threads:
        return ThreadPolicy(threads, wait, "setting")
    from_environment = _environment_threads()
    if from_environment:
        return ThreadPolicy(from_environment, wait, "environment")
    return ThreadPolicy(max(1, cores() - leave_free), wait, "automatic")


def add_option(parser) -> None:
    """`--threads N` on a command line."""
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="CPU threads to compute with (default 0: automatic, one per core; see docs/INSTALL.md)")


_in_force: ThreadPolicy | None = None


def apply(threads: int = 0, leave_free: int = 0) -> ThreadPolicy:
    """Choose the policy and put it in force: OpenMP's variables for a torch still to be
    imported, torch's own counts if it already is."""
    global _in_force
    policy = _in_force = choose(threads, leave_free)
    os.environ.setdefault(WAIT_VARIABLE, policy.wait)
    os.environ[THREADS_VARIABLE] = str(policy.threads)
    if "torch" in sys.modules:
        configure_torch(policy)
    return policy


def fit_to_work(work: float) -> None:
    """Before a run on the CPU: with an automatic count, one thread for small work (see
    SMALL_WORK), the policy's count otherwise. A count the user chose is left alone, and
    so is torch when no entry point applied a policy (the engine used as a library)."""
    if _in_force is None or _in_force.source != "automatic":
        return
    import torch

    wanted = 1 if work < SMALL_WORK else _in_force.threads
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)


def configure_torch(policy: ThreadPolicy) -> None:
    import torch

    torch.set_num_threads(policy.threads)
    try:  # allowed only before torch's first parallel work; the editor's worker runs one job at a time
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
