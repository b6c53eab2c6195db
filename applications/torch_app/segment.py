"""The segments of a torch app's process, whatever its workload (README.md of lenet5_torch).

An app script calls `main(workload)`: it trains K more epochs of the workload's model on the
workload's data, resuming weights and SGD state from DIR when it holds a checkpoint, then
saves DIR atomically; events go to stdout as `[pipetune] {json}` lines (pipetune/contract.py).
Under torchrun, as TorchDistributor starts it (distributor.py), each process trains its shard
of the data and DDP averages gradients over gloo; rank 0 talks to the launcher. A plain
process may run the next segment too when the launcher hands it over (PIPETUNE_NEXT_FILE).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipetune import contract  # the app protocol; standard library only

# When this process's Python started: the launcher's start-up accounting measures the launch
# up to here, and the app's own phases from here.
PYTHON_AT = contract.process_started_at()

import torch  # noqa: E402

from . import checkpoint, flags  # noqa: E402
from .batches import Batches, check_batch_size  # noqa: E402
from .digest import momentum_digest, weights_digest  # noqa: E402
from .live import LiveThreads, default_cores  # noqa: E402
from .loop import Trainer, TrainingLoop  # noqa: E402
from .relay import RelayClient  # noqa: E402
from .session import Session  # noqa: E402
from .workload import AppError, DataPlan, Shard, Workload  # noqa: E402
from .world import World  # noqa: E402

IMPORTED_AT = time.time()
Marks = list[tuple[str, float]]


@dataclass(frozen=True)
class Process:
    """What every segment of this process shares."""

    workload: Workload
    world: World
    session: Session
    launch_argv: list[str]  # the flags it was launched with


@dataclass(frozen=True)
class Ready:
    """A segment ready to train: its trainer (data, model, optimizer) and where it starts."""

    trainer: Trainer
    start_step: int  # iterations done since the trial began
    data_kept: bool  # from the process's last segment
    val_samples: int  # over all ranks
    about: dict[str, Any]  # what the data adds to the `start` event


def run(proc: Process, args: argparse.Namespace, decisions: Path | None) -> None:
    """The segments of this process: the one launched, then each one the launcher hands over,
    with the launch's own flags (contract.next_segment_argv)."""
    marks: Marks = [("launch", IMPORTED_AT)]
    if proc.world.size > 1:
        marks.append(("process group", time.time()))
    while True:
        train_segment(proc, args, decisions, marks)
        argv = proc.session.await_next(args.decisionTimeout)
        if argv is None:
            return
        argv = contract.next_segment_argv(proc.launch_argv, argv)
        args = flags.parse_args(proc.workload, argv)
        decisions = Path(args.decisionFile) if args.decisionFile else None
        marks = [("launch", time.time())]


def train_segment(
    proc: Process, args: argparse.Namespace, decisions: Path | None, marks: Marks
) -> None:
    world, session = proc.world, proc.session
    if session.segments:
        first, since = "handover", session.handed_over_at or marks[0][1]
    else:
        first, since = "imports", PYTHON_AT
    hp = proc.workload.hyperparameters(args)
    plan = proc.workload.plan_data(args)
    live = LiveThreads(args.cores or default_cores(world.local_size), world.size)
    ckpt = Path(args.checkpoint).expanduser().resolve()
    ready = prepare(proc, args, hp, plan, ckpt, marks)
    if world.leader:
        startup = {
            "python_at": None if session.segments else PYTHON_AT,
            "phases_s": startup_phases(first, since, marks),
        }
        contract.emit(start_event(proc, args, hp, plan, ready, startup))
    app = proc.workload.name
    loop = TrainingLoop(ready.trainer, live, hp, decisions, args.decisionTimeout, app)
    step = loop.run(ready.start_step, args.epochs)
    if world.leader:
        save(ckpt, ready.trainer, step, hp, plan, args.checkpoint)


def prepare(
    proc: Process,
    args: argparse.Namespace,
    hp: dict[str, Any],
    plan: DataPlan,
    ckpt: Path,
    marks: Marks,
) -> Ready:
    """Checks, then the data (or the last segment's), then the model: each phase marked."""
    world = proc.world
    try:
        check_batch_size(args.batchSize, world.size)
    except ValueError as exc:
        raise AppError(str(exc)) from exc
    meta, states = restore(ckpt, hp, plan, world)  # fails fast, before the data is made
    marks.append(("checks", time.time()))
    key = (plan.key(), world.rank, world.size)
    shard, kept = proc.session.shard(key, lambda: plan.load(world.rank, world.size))
    batches = Batches(shard.train_samples, args.batchSize, args.seed, world.rank, world.size)
    val_samples = int(world.sum(torch.tensor([len(shard.val_y)]))[0])
    marks.append(("data", time.time()))
    model, optimizer = build_model(proc.workload, args, shard, states)
    trainer = Trainer(
        model, optimizer, shard, batches, world, args.learningRate, args.learningRateDecay
    )
    marks.append(("model", time.time()))  # built, or loaded from the checkpoint
    start_step = int(meta["step"]) if meta else 0
    return Ready(trainer, start_step, kept, val_samples, shard.about)


def restore(
    ckpt: Path, hp: dict[str, Any], plan: DataPlan, world: World
) -> tuple[dict[str, Any] | None, tuple[dict, dict] | None]:
    """The trial's checkpoint (meta.json, then the model's and optimizer's states), read by
    rank 0 and handed to every rank; (None, None) for a fresh start."""
    found: tuple[dict[str, Any] | None, tuple[dict, dict] | None] = (None, None)
    if world.leader:
        meta = checkpoint.read_meta(ckpt, hp, plan.identity())
        if meta is not None:
            found = (meta, checkpoint.load_states(ckpt))
    return world.broadcast(found)


def build_model(
    workload: Workload, args: argparse.Namespace, shard: Shard, states: tuple[dict, dict] | None
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The workload's model and its SGD (dampening 0, no Nesterov: BigDL's), from the seed or
    restored."""
    torch.manual_seed(args.seed)  # weight initialisation
    model = workload.build_model(args, shard)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=args.learningRate, momentum=args.momentum, dampening=0.0
    )
    if states is not None:
        model.load_state_dict(states[0])
        optimizer.load_state_dict(states[1])  # the momentum buffers
    return model, optimizer


def start_event(
    proc: Process,
    args: argparse.Namespace,
    hp: dict[str, Any],
    plan: DataPlan,
    ready: Ready,
    startup: dict[str, Any],
) -> dict[str, Any]:
    trainer = ready.trainer
    return contract.start_event(
        args.appId or f"local-torch-{os.getpid()}",
        ready.start_step // trainer.batches.epoch_iterations,
        hp,
        engine="torch",
        processes=proc.world.size,
        train_samples=trainer.batches.samples,
        val_samples=ready.val_samples,
        data_source=plan.source,
        **ready.about,
        windows=True,  # it can pause inside an epoch (TrainingLoop)
        reuse=proc.session.reusable,  # it can take the next segment (Session)
        reused=proc.session.segments,  # segments this process ran before this one
        data_kept=ready.data_kept,
        weights=weights_digest(trainer.model),
        optimizer_state={
            "step": ready.start_step,
            "momentum": momentum_digest(trainer.optimizer),
        },
        startup=startup,
    )


def save(
    ckpt: Path,
    trainer: Trainer,
    step: int,
    hp: dict[str, Any],
    plan: DataPlan,
    as_given: str,
) -> None:
    saving = time.perf_counter()
    per_epoch = trainer.batches.epoch_iterations
    meta = {
        "epochs_done": step // per_epoch,
        "step": step,  # iterations done since the trial began; may fall inside an epoch
        "hyperparameters": hp,
        "data": plan.identity(),
        "optimizer_state": {"step": step, "momentum": momentum_digest(trainer.optimizer)},
    }
    checkpoint.write(ckpt, trainer.model, trainer.optimizer, meta)
    save_s = round(time.perf_counter() - saving, 4)
    contract.emit(contract.end_event(step // per_epoch, as_given, save_s=save_s))


def startup_phases(first: str, since: float, marks: Marks) -> dict[str, float]:
    """Seconds of each start-up phase: `first` from `since` to the first mark (a fresh
    process: Python and imports; a reused one: the handover), then each mark since the one
    before (as the BigDL app reports them)."""
    phases = {first: marks[0][1] - since}
    for (_, before), (name, at) in itertools.pairwise(marks):
        phases[name] = at - before
    return {name: round(max(0.0, s), 4) for name, s in phases.items()}


def report_error(app: str, message: str) -> None:
    """The reason for a failure, for humans (stderr) and for the launcher (an `error` event,
    from rank 0 only: every rank fails alike)."""
    print(f"{app}: error: {message}", file=sys.stderr, flush=True)
    if os.environ.get("RANK", "0") == "0":
        contract.emit(contract.error_event(message))


def main(workload: Workload, argv: list[str] | None = None) -> int:
    """Run the segments of this process; its exit status."""
    launch_argv = list(sys.argv[1:] if argv is None else argv)
    args = flags.parse_args(workload, launch_argv)  # exits 2 on bad flags
    with contextlib.ExitStack() as cleanup:  # closed after an error is reported
        try:
            world = World.join(args.decisionTimeout)
            cleanup.callback(world.close)
            decisions = Path(args.decisionFile) if args.decisionFile else None
            if args.relay and world.leader:  # rank 0 on an executor: stdout to the launcher
                mirror = Path(cleanup.enter_context(tempfile.TemporaryDirectory())) / "F"
                relay = RelayClient(args.relay, mirror, workload.name)
                cleanup.callback(relay.close)
                decisions = mirror if decisions else None
            session = Session(contract.next_file() if world.size == 1 else None, workload.name)
            run(Process(workload, world, session, launch_argv), args, decisions)
        except (AppError, checkpoint.CheckpointError) as exc:
            report_error(workload.name, str(exc))
            return 1
        except Exception as exc:  # torch or IO failures: traceback for humans, then the reason
            import traceback

            traceback.print_exc()
            report_error(workload.name, f"{type(exc).__name__}: {exc}")
            return 1
    return 0
