"""LeNet-5 on PyTorch for PipeTune: a trial segment per run, or several (README.md).

    python applications/lenet5_torch/lenet5_torch.py --epochs K --checkpoint DIR [flags]

Trains K more epochs of the BigDL app's LeNet-5 on the BigDL app's data, resuming weights and
SGD state from DIR when it holds a checkpoint, then saves DIR atomically; events go to stdout
as `[pipetune] {json}` lines (pipetune/contract.py). Under torchrun, as TorchDistributor starts
it (distributor.py), each process trains its shard of the data and DDP averages gradients over
gloo; rank 0 talks to the launcher. A plain process may run the next segment too when the
launcher hands it over (PIPETUNE_NEXT_FILE).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pipetune import contract  # the app protocol; standard library only

# When this process's Python started: the launcher's start-up accounting measures the launch
# up to here, and the app's own phases from here.
PYTHON_AT = contract.process_started_at()

sys.path.insert(0, str(Path(__file__).resolve().parent))  # torch_lenet5, beside this script
import torch  # noqa: E402
from torch_lenet5 import checkpoint, flags  # noqa: E402
from torch_lenet5.batches import Batches  # noqa: E402
from torch_lenet5.live import LiveThreads, default_cores  # noqa: E402
from torch_lenet5.loop import Trainer, TrainingLoop  # noqa: E402
from torch_lenet5.model import build_lenet5, momentum_digest, weights_digest  # noqa: E402
from torch_lenet5.relay import RelayClient  # noqa: E402
from torch_lenet5.samples import DataError, DataPlan, load_shard  # noqa: E402
from torch_lenet5.session import Session  # noqa: E402
from torch_lenet5.world import World  # noqa: E402

IMPORTED_AT = time.time()
Marks = list[tuple[str, float]]


class AppError(Exception):
    """A failure with a message meant for the user (flags that do not fit the job)."""


def run(
    args: argparse.Namespace, world: World, decisions: Path | None, launch_argv: list[str]
) -> None:
    """The segments of this process: the one launched, then each one the launcher hands over,
    with the launch's own flags (contract.next_segment_argv)."""
    marks: Marks = [("launch", IMPORTED_AT)]
    if world.size > 1:
        marks.append(("process group", time.time()))
    session = Session(contract.next_file() if world.size == 1 else None)
    while True:
        train_segment(args, world, session, decisions, marks)
        argv = session.await_next(args.decisionTimeout)
        if argv is None:
            return
        args = flags.parse_args(contract.next_segment_argv(launch_argv, argv))
        decisions = Path(args.decisionFile) if args.decisionFile else None
        marks = [("launch", time.time())]


def train_segment(
    args: argparse.Namespace,
    world: World,
    session: Session,
    decisions: Path | None,
    marks: Marks,
) -> None:
    if session.segments:
        first, since = "handover", session.handed_over_at or marks[0][1]
    else:
        first, since = "imports", PYTHON_AT
    hp = flags.hyperparameters(args)
    plan = DataPlan.from_flags(args.dataPath, args.trainSize, args.seed)
    live = LiveThreads(args.cores or default_cores(world.local_size), world.size)
    try:
        batches = Batches(plan.train_size, args.batchSize, args.seed, world.rank, world.size)
    except ValueError as exc:
        raise AppError(str(exc)) from exc
    ckpt = Path(args.checkpoint).expanduser().resolve()
    meta, states = restore(ckpt, hp, plan, world)  # fails fast, before the data is made
    marks.append(("checks", time.time()))
    key = (plan, world.rank, world.size)
    shard, kept = session.shard(key, lambda: load_shard(plan, world.rank, world.size))
    val_samples = int(world.sum(torch.tensor([len(shard.val_y)]))[0])
    marks.append(("data", time.time()))
    model, optimizer = build_model(args, states)
    trainer = Trainer(
        model, optimizer, shard, batches, world, args.learningRate, args.learningRateDecay
    )
    start_step = int(meta["step"]) if meta else 0
    marks.append(("model", time.time()))  # built, or loaded from the checkpoint
    if world.leader:
        contract.emit(
            contract.start_event(
                args.appId or f"local-torch-{os.getpid()}",
                start_step // batches.epoch_iterations,
                hp,
                engine="torch",
                processes=world.size,
                train_samples=plan.train_size,
                val_samples=val_samples,
                data_source=plan.source,
                windows=True,  # it can pause inside an epoch (TrainingLoop)
                reuse=session.reusable,  # it can take the next segment (Session)
                reused=session.segments,  # segments this process ran before this one
                data_kept=kept,
                weights=weights_digest(model),
                optimizer_state={"step": start_step, "momentum": momentum_digest(optimizer)},
                startup={
                    "python_at": None if session.segments else PYTHON_AT,
                    "phases_s": startup_phases(first, since, marks),
                },
            )
        )
    loop = TrainingLoop(trainer, live, hp, decisions, args.decisionTimeout)
    step = loop.run(start_step, args.epochs)
    if world.leader:
        save(ckpt, model, optimizer, step, batches.epoch_iterations, hp, plan, args.checkpoint)


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
    args: argparse.Namespace, states: tuple[dict, dict] | None
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """LeNet-5 and its SGD (dampening 0, no Nesterov: BigDL's), from the seed or restored."""
    torch.manual_seed(args.seed)  # weight initialisation
    model = build_lenet5()
    optimizer = torch.optim.SGD(
        model.parameters(), lr=args.learningRate, momentum=args.momentum, dampening=0.0
    )
    if states is not None:
        model.load_state_dict(states[0])
        optimizer.load_state_dict(states[1])  # the momentum buffers
    return model, optimizer


def save(
    ckpt: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    per_epoch: int,
    hp: dict[str, Any],
    plan: DataPlan,
    as_given: str,
) -> None:
    saving = time.perf_counter()
    meta = {
        "epochs_done": step // per_epoch,
        "step": step,  # iterations done since the trial began; may fall inside an epoch
        "hyperparameters": hp,
        "data": plan.identity(),
        "optimizer_state": {"step": step, "momentum": momentum_digest(optimizer)},
    }
    checkpoint.write(ckpt, model, optimizer, meta)
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


def report_error(message: str) -> None:
    """The reason for a failure, for humans (stderr) and for the launcher (an `error` event,
    from rank 0 only: every rank fails alike)."""
    print(f"lenet5_torch: error: {message}", file=sys.stderr, flush=True)
    if os.environ.get("RANK", "0") == "0":
        contract.emit(contract.error_event(message))


def main(argv: list[str] | None = None) -> int:
    launch_argv = list(sys.argv[1:] if argv is None else argv)
    args = flags.parse_args(launch_argv)  # exits 2 on bad flags
    with contextlib.ExitStack() as cleanup:  # closed after an error is reported
        try:
            world = World.join(args.decisionTimeout)
            cleanup.callback(world.close)
            decisions = Path(args.decisionFile) if args.decisionFile else None
            if args.relay and world.leader:  # rank 0 on an executor: stdout to the launcher
                mirror = Path(cleanup.enter_context(tempfile.TemporaryDirectory())) / "F"
                relay = RelayClient(args.relay, mirror)
                cleanup.callback(relay.close)
                decisions = mirror if decisions else None
            run(args, world, decisions, launch_argv)
        except (AppError, DataError, checkpoint.CheckpointError) as exc:
            report_error(str(exc))
            return 1
        except Exception as exc:  # torch or IO failures: traceback for humans, then the reason
            import traceback

            traceback.print_exc()
            report_error(f"{type(exc).__name__}: {exc}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
