"""A BigDL app's segments, run the same way for every workload (docs/APPS.md).

One segment: check the checkpoint (before Spark starts), start Spark or reuse this process's
context, make or keep the data, build the model and SGD or load them with their momentum,
say `start`, train `--epochs` more epochs with the pauses the launcher asks for, save the
checkpoint, say `end`. Then, when the launcher may reuse the process, wait for the next
segment's flags and run that one (session.py).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bigdl_app.checkpoint import (
    CHECKPOINT_FORMAT,
    load_checkpoint,
    optim_state,
    read_checkpoint,
    write_checkpoint,
)
from bigdl_app.errors import AppError, report_error
from bigdl_app.momentum import collect_momentum, restore_momentum
from bigdl_app.session import Session
from bigdl_app.training import LiveEngine, TrainingLoop
from bigdl_app.workload import Workload
from pipetune import contract

# When this process's Python started: the launcher's start-up accounting measures the launch
# (spark-submit's JVM, then Python) up to here, and the app's own phases from here.
PYTHON_AT = contract.process_started_at()


def main(workload: Workload, argv: list[str] | None = None) -> int:
    """Run the app: 0 when every segment ended, 1 on a failure (reported), 2 on bad flags."""
    launch_argv = list(sys.argv[1:] if argv is None else argv)
    args = workload.parse_args(launch_argv)  # exits 2 on bad flags
    try:
        run(workload, args, launch_argv)
    except AppError as exc:
        report_error(workload.name, str(exc))
        return 1
    except Exception as exc:  # Spark/BigDL/IO failures: traceback for humans, then the reason
        import traceback

        traceback.print_exc()
        report_error(workload.name, f"{type(exc).__name__}: {exc}")
        return 1
    return 0


def run(workload: Workload, args: argparse.Namespace, launch_argv: list[str]) -> None:
    """The segments of this process: the one launched, then each one the launcher hands over
    (contract.py, "Reuse"), with the launch's own flags (contract.next_segment_argv)."""
    session = Session(workload.name, workload.py_files)
    try:
        while True:
            SegmentRun(workload, args, session).run()
            argv = session.await_next(args.decisionTimeout)
            if argv is None:
                return
            args = workload.parse_args(contract.next_segment_argv(launch_argv, argv))
    finally:
        session.stop()


class SegmentRun:
    """One segment in this process, from its flags to its `end`."""

    def __init__(self, workload: Workload, args: argparse.Namespace, session: Session) -> None:
        self.workload, self.args, self.session = workload, args, session
        self.name = workload.name
        self.marks = [("launch", time.time())]  # the app's start-up phases, as they end
        if session.segments:
            self.first, self.since = "handover", session.handed_over_at or self.marks[0][1]
        else:
            self.first, self.since = "imports", PYTHON_AT
        self.hp = workload.hyperparameters(args)
        self.ckpt = Path(args.checkpoint).expanduser().resolve()
        self.plan = workload.plan_data(args)

    def run(self) -> None:
        meta = read_checkpoint(self.ckpt, self.hp, self.plan.identity())  # before Spark starts
        start_epoch = int(meta["epochs_done"]) if meta else 0
        self.resumed = meta is not None
        self.marks.append(("checks", time.time()))
        if self.session.sc is None:
            self.plan.prefetch()
            self.session.start()
            self.marks.append(("spark context", time.time()))
        else:
            self.session.reset_engine()  # as a fresh process finds it
        summary_dir = tempfile.mkdtemp(prefix=f"{self.name}-summary-")
        try:
            self._train(meta, start_epoch, summary_dir)
        finally:
            shutil.rmtree(summary_dir, ignore_errors=True)

    def _train(self, meta: dict[str, Any] | None, start_epoch: int, summary_dir: str) -> None:
        from bigdl.dllib.optim.optimizer import TrainSummary
        from bigdl.dllib.utils.common import get_node_and_core_number

        args, sc = self.args, self.session.sc
        nodes, cores = get_node_and_core_number()
        if args.batchSize % nodes or (not args.decisionFile and args.batchSize % (nodes * cores)):
            # (with a decision file the launcher sets the cores first, and they are checked then)
            raise AppError(
                f"--batchSize {args.batchSize} must be a multiple of nodes x cores = "
                f"{nodes} x {cores} (BigDL splits every batch evenly over all cores)"
            )
        partitions = args.partitions or sc.defaultParallelism
        dataset, data_kept = self.session.dataset(
            self.plan.key(partitions), lambda: self.plan.build(sc, partitions)
        )
        self.marks.append(("data", time.time()))
        opt, model, restored = self._optimizer(meta, start_epoch, dataset.train, nodes)
        self.marks.append(("model", time.time()))  # built, or loaded from the checkpoint
        summary = TrainSummary(summary_dir, self.name)
        opt.set_train_summary(summary)
        self._announce(start_epoch, dataset, data_kept, model, restored)
        engine = LiveEngine(sc, args.batchSize, nodes)
        samples = dataset.train_samples
        loop = TrainingLoop(
            self.name, args, opt, model, dataset.val, summary, engine, self.hp, samples
        )
        epochs_done = loop.run(start_epoch, max(0, (restored["neval"] or 1) - 1))
        self._save(opt, model, epochs_done)

    def _optimizer(
        self, meta: dict[str, Any] | None, start_epoch: int, train: Any, nodes: int
    ) -> tuple[Any, Any, dict[str, Any]]:
        """BigDL's optimizer over a new model and SGD, or the checkpoint's with its momentum;
        and the SGD state it starts from."""
        from bigdl.dllib.optim.optimizer import MaxEpoch, Optimizer, OptimMethod
        from bigdl.dllib.utils.common import RNG

        momentum = None
        if meta:
            model, optim_method, momentum = load_checkpoint(self.ckpt)
        else:
            RNG().set_seed(self.args.seed)  # weight init; BigDL's data shuffling stays unseeded
            model = self.workload.build_model(self.args, self.plan)
            optim_method = self.workload.optim_method(self.args)
        restored = optim_state(optim_method)
        opt = Optimizer.create(
            model=model,
            training_set=train,
            criterion=self.workload.criterion(),
            end_trigger=MaxEpoch(start_epoch + 1),
            batch_size=self.args.batchSize,
            optim_method=OptimMethod(optim_method, "float"),
        )
        opt.value.reserveOptim(True)  # keep executor SGD clones (momentum) across optimize()
        # BigDL's own cached copy of the training set (JVM Samples, one partition per node):
        # built now so that epoch 1's duration is not inflated by it.
        opt.prepare_input()
        if momentum is not None:
            expected = sum(int(w.size) for w in model.get_weights())
            if expected != len(momentum):
                raise AppError(f"checkpoint momentum has {len(momentum)} values, model {expected}")
            sc = self.session.sc
            if not restore_momentum(sc, opt, optim_method, momentum, nodes, self.name):
                print(
                    f"{self.name}: warning: could not co-locate the saved momentum with BigDL's "
                    "model partitions; momentum restarts from zero",
                    file=sys.stderr,
                )
                momentum = None
        self.momentum_restored = momentum is not None
        return opt, model, restored

    def _announce(
        self, start_epoch: int, dataset: Any, data_kept: bool, model: Any, restored: dict
    ) -> None:
        """The `start` event, and the start-up and resume on stderr for humans."""
        session = self.session
        contract.emit(
            contract.start_event(
                session.sc.applicationId,
                start_epoch,
                self.hp,
                train_samples=dataset.train_samples,
                val_samples=dataset.val_samples,
                **self.plan.describe(),
                windows=True,  # it can pause inside an epoch (TrainingLoop)
                reuse=session.reusable,  # it can take the next segment (Session)
                reused=session.segments,  # segments this process ran before this one
                data_kept=data_kept,
                weights=weights_digest(model),
                optimizer_state=restored,
                startup={
                    "python_at": PYTHON_AT if not session.segments else None,
                    "phases_s": startup_phases(self.first, self.since, self.marks),
                },
            )
        )
        marks = self.marks
        steps = ", ".join(f"{name} {t - marks[i][1]:.2f}s" for i, (name, t) in enumerate(marks[1:]))
        print(f"{self.name}: startup: {steps}", file=sys.stderr)
        if self.resumed:
            print(
                f"{self.name}: resumed {self.ckpt}: optimizer state {restored}, momentum "
                f"{'restored' if self.momentum_restored else 'absent'}",
                file=sys.stderr,
            )

    def _save(self, opt: Any, model: Any, epochs_done: int) -> None:
        """The checkpoint, swapped in whole, then the `end` event."""
        saving = time.perf_counter()
        driver_method = opt.value.optimMethods().values().head()
        new_meta = {
            "format": CHECKPOINT_FORMAT,
            "epochs_done": epochs_done,
            "hyperparameters": self.hp,
            "data": self.plan.identity(),
            "optimizer_state": optim_state(driver_method),
            "momentum_saved": False,
        }
        new_momentum = collect_momentum(opt)  # None when momentum is 0 (SGD keeps no buffer)
        new_meta["momentum_saved"] = new_momentum is not None
        write_checkpoint(self.ckpt, model, driver_method, new_momentum, new_meta)
        save_s = round(time.perf_counter() - saving, 4)
        contract.emit(contract.end_event(epochs_done, self.args.checkpoint, save_s=save_s))


def startup_phases(first: str, since: float, marks: list[tuple[str, float]]) -> dict[str, float]:
    """Seconds of each start-up phase: `first` from `since` to the first mark (a fresh
    process: Python and imports; a reused one: the handover), then each mark since the one
    before."""
    phases = {first: marks[0][1] - since}
    for (_, before), (name, at) in itertools.pairwise(marks):
        phases[name] = at - before
    return {name: round(max(0.0, s), 4) for name, s in phases.items()}


def weights_digest(model: Any) -> str:
    """A fingerprint of the model's weights: a segment's start says where it starts from."""
    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]
