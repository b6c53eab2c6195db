"""LeNet-5 on BigDL 2.4 (dllib) for PipeTune: a trial segment per spark-submit, or several.

    spark-submit [spark options] applications/lenet5/lenet5.py \
        --epochs K --checkpoint DIR [--batchSize B --learningRate LR ...]

Trains K more epochs, resuming model weights and SGD state from DIR when it holds a
checkpoint, then saves DIR atomically. When the launcher may reuse the process
(PIPETUNE_NEXT_FILE), it then waits for the next segment's flags and runs that one in the
same Spark context (session.py). Progress goes to stdout as single lines
``[pipetune] {json}`` (events "start", "epoch", "end"); see README.md for the contract.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

# data.py sits next to this file; executors get it through SparkContext.addPyFile.
APP_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(APP_DIR))
import data  # noqa: E402
from session import Dataset, Session  # noqa: E402

from pipetune import contract  # noqa: E402  (the app protocol; standard library only)

# When this process's Python started: the launcher's start-up accounting measures the launch
# (spark-submit's JVM, then Python) up to here, and the app's own phases from here.
PYTHON_AT = contract.process_started_at()

CHECKPOINT_FORMAT = 1
MODEL_FILE = "model.bigdl"
OPTIM_FILE = "optim_method.bigdl"
MOMENTUM_FILE = "momentum.npy"
# Measured on the 2-core dev machine: ~5-7 s per epoch at batch 128 in local[2] (README).
DEFAULT_DIGITS_TRAIN_SIZE = data.DEFAULT_DIGITS_TRAIN_SIZE
EVAL_BATCH_SIZE = 128


class AppError(Exception):
    """A failure with a message meant for the user (bad flags, data or checkpoint)."""


emit = contract.emit


# ------------------------------------------------------------------------------ flags


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _ArgumentParser(
        prog="lenet5.py", description="LeNet-5 on BigDL for PipeTune (resumable trial segment)"
    )
    p.add_argument("--batchSize", type=int, default=128)
    p.add_argument("--learningRate", type=float, default=0.05)
    p.add_argument("--learningRateDecay", type=float, default=0.0)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument(
        "--dataPath", default="", help="directory with MNIST IDX files; else sklearn digits"
    )
    p.add_argument(
        "--trainSize",
        type=int,
        default=None,
        help=f"digits: augmented training samples (default {DEFAULT_DIGITS_TRAIN_SIZE}); "
        "MNIST: cap on training samples (default/0: all)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--partitions", type=int, default=0, help="data partitions (0: default parallelism)"
    )
    contract.add_standard_flags(p)
    args = p.parse_args(argv)

    problems = []
    if args.batchSize <= 0:
        problems.append("--batchSize must be > 0")
    if not (args.learningRate > 0 and math.isfinite(args.learningRate)):
        problems.append("--learningRate must be a finite number > 0")
    if not (args.learningRateDecay >= 0 and math.isfinite(args.learningRateDecay)):
        problems.append("--learningRateDecay must be a finite number >= 0")
    if not 0 <= args.momentum < 1:
        problems.append("--momentum must be in [0, 1)")
    if args.epochs < 1:
        problems.append("--epochs must be >= 1")
    if args.trainSize is not None and args.trainSize < 0:
        problems.append("--trainSize must be >= 0")
    if args.partitions < 0:
        problems.append("--partitions must be >= 0")
    if not args.checkpoint.strip():
        problems.append("--checkpoint must not be empty")
    if problems:
        p.error("; ".join(problems))
    return args


def hyperparameters(args: argparse.Namespace) -> dict[str, Any]:
    """Exactly the parsed values; echoed in every event and stored in meta.json."""
    return {
        "batchSize": args.batchSize,
        "learningRate": args.learningRate,
        "learningRateDecay": args.learningRateDecay,
        "momentum": args.momentum,
        "seed": args.seed,
        "trainSize": args.trainSize,
    }


# ------------------------------------------------------------------------------- data


class DataPlan:
    """Which data the trial uses; decided on the driver before Spark starts."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.seed = args.seed
        self.mnist_dir = ""  # MNIST source only
        self.limit = 0  # MNIST source only: cap on training samples (0: all)
        self._split: data.DigitsSplit | None = None
        self._split_error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if data.find_mnist_files(args.dataPath) is not None:
            self.source = "mnist-idx"
            self.mnist_dir = os.path.abspath(args.dataPath)
            self.limit = args.trainSize or 0
            try:
                self.train_size, _ = data.check_mnist(self.mnist_dir, self.limit)
            except ValueError as exc:
                raise AppError(f"bad MNIST data: {exc}") from exc
        else:
            if args.dataPath:
                print(
                    f"lenet5: warning: --dataPath {args.dataPath!r} holds no MNIST IDX files; "
                    "using scikit-learn digits",
                    file=sys.stderr,
                )
            self.source = "sklearn-digits"
            self.train_size = args.trainSize or DEFAULT_DIGITS_TRAIN_SIZE

    def start_split(self) -> None:
        """Compute the digits split in a thread: importing scikit-learn takes ~2 s, which
        overlaps with the SparkContext start (the main thread just waits on the JVM)."""
        if self.source != "sklearn-digits":
            return

        def work() -> None:
            try:
                self._split = data.digits_split(self.seed)
            except BaseException as exc:  # re-raised in the main thread by .split
                self._split_error = exc

        self._thread = threading.Thread(target=work, name="digits-split", daemon=True)
        self._thread.start()

    @property
    def split(self) -> data.DigitsSplit:
        if self._split is None and self._split_error is None:
            if self._thread is None:
                self.start_split()
            assert self._thread is not None
            self._thread.join()
        if self._split_error is not None:
            raise self._split_error
        assert self._split is not None
        return self._split

    def identity(self) -> dict[str, Any]:
        """What must not change across the segments of one trial (stored in meta.json)."""
        return {"source": self.source, "train_samples": self.train_size, "seed": self.seed}


def build_dataset(sc: Any, plan: DataPlan, partitions: int) -> Dataset:
    """Training and validation RDD[Sample], generated inside the partitions and cached."""
    from bigdl.dllib.utils.common import Sample

    def to_samples(x: np.ndarray, y: np.ndarray):
        for i in range(len(x)):
            yield Sample.from_ndarray(x[i], np.float32(y[i]))

    seeds = sc.parallelize(range(partitions), partitions)
    if plan.source == "mnist-idx":
        mnist_dir, limit = plan.mnist_dir, plan.limit

        def train_part(idx: int, _it: Any):
            return to_samples(*data.mnist_partition(mnist_dir, "train", limit, idx, partitions))

        def val_part(idx: int, _it: Any):
            return to_samples(*data.mnist_partition(mnist_dir, "test", 0, idx, partitions))

        val = seeds.mapPartitionsWithIndex(val_part)
    else:
        split_bc = sc.broadcast(plan.split)
        seed, total = plan.seed, plan.train_size

        def train_part(idx: int, _it: Any):
            x, y = data.digits_train_partition(split_bc.value, seed, total, idx, partitions)
            return to_samples(x, y)

        vx, vy = data.digits_validation(plan.split)  # ~360 images: fine to ship from the driver
        val = sc.parallelize([(vx[i], vy[i]) for i in range(len(vx))], partitions).map(
            lambda t: Sample.from_ndarray(t[0], np.float32(t[1]))
        )
    train = seeds.mapPartitionsWithIndex(train_part).setName("lenet5-train").cache()
    val = val.setName("lenet5-val").cache()
    return Dataset(train, val, train.count(), val.count())


# ------------------------------------------------------------------------------ model


def build_lenet5(class_num: int = data.NUM_CLASSES) -> Any:
    from bigdl.dllib.nn.layer import (
        Linear,
        LogSoftMax,
        Reshape,
        Sequential,
        SpatialConvolution,
        SpatialMaxPooling,
        Tanh,
    )

    model = Sequential()
    model.add(Reshape([1, 28, 28]))
    model.add(SpatialConvolution(1, 6, 5, 5))
    model.add(Tanh())
    model.add(SpatialMaxPooling(2, 2, 2, 2))
    model.add(SpatialConvolution(6, 12, 5, 5))
    model.add(Tanh())
    model.add(SpatialMaxPooling(2, 2, 2, 2))
    model.add(Reshape([12 * 4 * 4]))
    model.add(Linear(12 * 4 * 4, 100))
    model.add(Tanh())
    model.add(Linear(100, class_num))
    model.add(LogSoftMax())
    return model


# ------------------------------------------------------------------------- checkpoint


def _tmp_dir(ckpt: Path) -> Path:
    return ckpt.with_name(ckpt.name + ".tmp")


def _old_dir(ckpt: Path) -> Path:
    return ckpt.with_name(ckpt.name + ".old")


def read_checkpoint(ckpt: Path, hp: dict[str, Any], plan: DataPlan) -> dict[str, Any] | None:
    """meta.json of an existing checkpoint (None if fresh); AppError if it is not ours."""
    old = _old_dir(ckpt)
    if not ckpt.exists() and old.is_dir():
        # A previous run died between its two renames: the old checkpoint is complete.
        old.rename(ckpt)
    if _tmp_dir(ckpt).exists():
        shutil.rmtree(_tmp_dir(ckpt))  # half-written by a crashed run; never valid
    if not ckpt.exists():
        return None
    if not ckpt.is_dir():
        raise AppError(f"checkpoint {ckpt} exists and is not a directory")
    meta_path = ckpt / contract.META_FILE
    if not meta_path.exists():
        if any(ckpt.iterdir()):
            raise AppError(
                f"checkpoint {ckpt} is not empty but has no {contract.META_FILE}; "
                "refusing to use it"
            )
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise AppError(f"checkpoint {ckpt}: unreadable {contract.META_FILE}: {exc}") from exc
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise AppError(
            f"checkpoint {ckpt}: format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT}"
        )
    if meta.get("hyperparameters") != hp:
        raise AppError(
            f"checkpoint {ckpt} belongs to a trial with hyperparameters "
            f"{json.dumps(meta.get('hyperparameters'))}, not {json.dumps(hp)}"
        )
    if meta.get("data") is not None and meta["data"] != plan.identity():
        raise AppError(
            f"checkpoint {ckpt} was trained on data {json.dumps(meta['data'])}, "
            f"not {json.dumps(plan.identity())}"
        )
    for name in (MODEL_FILE, OPTIM_FILE):
        if not (ckpt / name).exists():
            raise AppError(f"checkpoint {ckpt} lacks {name}")
    return meta


def write_checkpoint(
    ckpt: Path, model: Any, optim_method: Any, momentum: np.ndarray | None, meta: dict[str, Any]
) -> None:
    """Write into DIR.tmp, then swap it in with renames; meta.json is written last."""
    from bigdl.dllib.utils.common import callBigDlFunc

    tmp, old = _tmp_dir(ckpt), _old_dir(ckpt)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.saveModel(str(tmp / MODEL_FILE), over_write=True)
    # OptimMethod.save keeps the state table (epoch, neval, evalCounter = the learning-rate
    # schedule step) but drops the momentum buffer; that one goes to momentum.npy.
    callBigDlFunc("float", "saveOptimMethod", optim_method, str(tmp / OPTIM_FILE), True)
    if momentum is not None:
        np.save(tmp / MOMENTUM_FILE, momentum)
    contract.write_meta(tmp, meta)
    if old.exists():
        shutil.rmtree(old)
    if ckpt.exists():
        ckpt.rename(old)
    tmp.rename(ckpt)
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------- BigDL optimizer state
#
# DistriOptimizer shards the parameters over its partitions (one per executor) and each
# executor runs its own clone of the SGD on its shard, so the momentum buffer ("dfdx")
# lives only on the executors: the driver's OptimMethod never holds it (and
# OptimMethod.save would drop it anyway), and optimize() normally starts every call from
# fresh clones of the driver's SGD, i.e. with zero momentum at every epoch boundary.
# With reserveOptim(true) the optimizer keeps the executor clones in its cached
# `previousOptim` RDD between optimize() calls and trains on those objects in place.
# We collect that RDD to save the buffer (re-assembled into one vector, so a resume may use
# another executor count), and on resume build a cached RDD of clones of the loaded SGD
# holding the right slices, placed on the executors that hold BigDL's training partitions,
# and hand it to the optimizer as `previousOptim`. The driver's SGD state table (epoch,
# neval, evalCounter: the step of the learning-rate decay) survives OptimMethod.save/load.


def _optim_state(optim_method: Any) -> dict[str, Any]:
    state = optim_method.state()
    out = {}
    for key in ("epoch", "neval", "evalCounter"):
        value = state.get(key)
        out[key] = int(value.get()) if value.isDefined() else None
    return out


def collect_momentum(opt: Any) -> np.ndarray | None:
    """The full SGD momentum vector from the executor clones (None if there is none)."""
    from bigdl.dllib.utils.common import callBigDlFunc

    previous = opt.value.previousOptim()
    if previous is None:
        return None
    slices = []
    for methods in previous.collect():  # one Map(name -> OptimMethod) per partition, in order
        dfdx = methods.values().head().state().get("dfdx")
        if not dfdx.isDefined():
            return None
        slices.append(callBigDlFunc("float", "toJTensor", dfdx.get()).to_ndarray().ravel())
    return np.concatenate(slices).astype(np.float32)


def restore_momentum(
    sc: Any, opt: Any, optim_method: Any, momentum: np.ndarray, nodes: int
) -> bool:
    """Seed the optimizer's executor-side SGD clones with the saved momentum buffer.

    ``nodes`` is BigDL's node (executor) count = the number of parameter shards. Returns
    False (momentum starts from zero) if the shards cannot be placed next to BigDL's
    cached model partitions.
    """
    from bigdl.dllib.utils.common import JTensor, callBigDlFunc

    jvm, jsc = sc._jvm, sc._jsc.sc()
    methods = opt.value.optimMethods()  # Map(model name -> the driver's SGD)
    name = methods.keys().head()
    # BigDL builds its per-executor model cache from the cached, coalesced training set and
    # reuses the previousOptim objects in place, so each shard must be cached on the same
    # executor as partition pid of that set, or BigDL would train on remote copies.
    opt.prepare_input()  # caches the training set now (optimize() would otherwise)
    origin = opt.value.dataset().toDistributed().originRDD()
    if origin.getNumPartitions() != nodes:
        return False
    entries, wanted = [], []
    for pid in range(nodes):
        # Same slicing as BigDL's AllReduceParameter: partition pid owns this range.
        start, count = data.partition_range(len(momentum), nodes, pid)
        clone = optim_method.clone()  # carries epoch/neval/evalCounter of the checkpoint
        shard = callBigDlFunc(
            "float", "toTensor", JTensor.from_ndarray(momentum[start : start + count])
        )
        clone.state().update("dfdx", shard)
        locs = _cache_locations(jvm, origin, pid)
        wanted.append(locs)
        entries.append(jvm.scala.Tuple2(methods.updated(name, clone), _to_scala(sc, sorted(locs))))
    seq = _to_scala(sc, entries)
    class_tag = jvm.scala.reflect.ClassTag.apply(jvm.java.lang.Object().getClass())
    shards = jsc.makeRDD(seq, class_tag).setName("lenet5-momentum").cache()  # live objects
    shards.count()
    placed = [_cache_locations(jvm, shards, pid) for pid in range(nodes)]
    if any(not (w & p) for w, p in zip(wanted, placed, strict=True)):
        shards.unpersist(False)
        return False
    getattr(opt.value, "previousOptim_$eq")(shards)
    return True


def _cache_locations(jvm: Any, rdd: Any, pid: int) -> set:
    """Executors caching partition pid of rdd, as Spark location strings.

    Asks the block manager master directly: the scheduler's getPreferredLocs keeps a
    per-job cache of these and may answer with stale (empty) locations between jobs.
    """
    master = jvm.org.apache.spark.SparkEnv.get().blockManager().master()
    block = jvm.org.apache.spark.storage.RDDBlockId(rdd.id(), pid)
    holders = _scala_list(master.getLocations(block))
    return {f"executor_{b.host()}_{b.executorId()}" for b in holders}


def _to_scala(sc: Any, items: list[Any]) -> Any:
    """A Python list of Java objects/strings as an immutable Scala List."""
    from py4j.java_collections import ListConverter

    jlist = ListConverter().convert(items, sc._gateway._gateway_client)
    return sc._jvm.scala.collection.JavaConverters.asScalaBufferConverter(jlist).asScala().toList()


def _scala_list(seq: Any) -> list[Any]:
    it = seq.iterator()
    out = []
    while it.hasNext():
        out.append(it.next())
    return out


class EpochIterations:
    """One epoch's iterations from BigDL's TrainSummary: losses and wall times."""

    def __init__(self, loss: list[float], seconds: list[float]) -> None:
        self.loss = loss
        self.seconds = seconds


def epoch_iterations(summary: Any, after_step: int, batch_size: int) -> tuple[EpochIterations, int]:
    """The iterations logged after ``after_step``, and the last step logged.

    Each iteration's wall time comes from BigDL's "Throughput" scalar (records per second of
    that iteration, measured by the optimizer around the whole iteration); the tuner compares
    settings on these rather than on whole epochs, whose first iterations pay JIT warm-up.
    """
    losses = summary.read_scalar("Loss")  # rows of (iteration, loss, wall clock)
    loss = [float(r[1]) for r in losses if int(r[0]) > after_step]
    last = max([int(r[0]) for r in losses], default=after_step)
    try:
        rates = summary.read_scalar("Throughput")
    except Exception:  # an older summary without it: no per-iteration times
        rates = []
    seconds = [
        batch_size / float(r[1]) for r in rates if int(r[0]) > after_step and float(r[1]) > 0
    ]
    return EpochIterations(loss, seconds), last


class LiveEngine:
    """What the launcher may change between epochs of a running job: BigDL's core number.

    BigDL reads `Engine.coreNumber()` at every `optimize()` and re-clones one model replica
    per core (on a cluster the executors take it from the task closure), so a new value
    takes effect at the next epoch. The launcher moves the processes to the matching CPUs;
    `in_force()` echoes both, and the launcher checks them.
    """

    def __init__(self, sc: Any, batch_size: int, nodes: int) -> None:
        utils = sc._jvm.com.intel.analytics.bigdl.dllib.utils
        self._engine = getattr(getattr(utils, "Engine$"), "MODULE$")
        self.batch_size = batch_size
        self.nodes = nodes

    def cores(self) -> int:
        return int(self._engine.coreNumber())

    def apply(self, live: dict[str, Any]) -> str | None:
        """Apply the live values; the reason it cannot, or None."""
        unknown = sorted(set(live) - {"cores"})
        if unknown:
            return f"no live parameter {unknown[0]!r} in this app (live: cores)"
        cores = int(live.get("cores", self.cores()))
        per_node = self.batch_size // self.nodes
        if cores < 1 or per_node % cores:
            return (
                f"cores {cores}: the batch of {self.batch_size} over {self.nodes} node(s) "
                f"does not split into {cores} equal parts"
            )
        if cores != self.cores():
            self._engine.setCoreNumber(cores)
        return None

    def in_force(self) -> dict[str, Any]:
        return {"cores": self.cores(), "cpus": sorted(os.sched_getaffinity(0))}


class TrainingLoop:
    """The epochs of one process, with the pauses the launcher asks for.

    Each `optimize()` call trains to the end of the epoch in progress, or to the end of a
    window of iterations inside it when a decision asked for one (BigDL stops at an iteration
    trigger and the next call goes on from there: its epoch, record count and learning-rate
    step live in the optimizer's state, so an epoch split by windows is validated, counted and
    reported once, when it ends, as if nothing had happened). BigDL draws a new random start
    in its shuffled order at each call, so the rest of a split epoch may see some samples twice
    and others not at all, as a BigDL job resumed mid-epoch does.
    """

    def __init__(
        self,
        args: argparse.Namespace,
        opt: Any,
        model: Any,
        val: Any,
        summary: Any,
        engine: LiveEngine,
        hp: dict[str, Any],
        samples: int,
    ) -> None:
        self.args = args
        self.opt = opt
        self.model = model
        self.val = val
        self.summary = summary
        self.engine = engine
        self.hp = hp
        self.samples = samples
        self.epoch_iterations = -(-samples // args.batchSize)  # BigDL's iterations per epoch
        self.decisions = Path(args.decisionFile) if args.decisionFile else None
        # the epoch in progress: its training seconds, iteration times and losses so far
        self.train_s = 0.0
        self.seconds: list[float] = []
        self.losses: list[float] = []

    def run(self, start_epoch: int, step: int) -> int:
        """Train to `--epochs` more epochs (or a decision to stop); the epochs done."""
        from bigdl.dllib.optim.optimizer import MaxEpoch, MaxIteration, TriggerOr

        epoch, last_epoch = start_epoch, start_epoch + self.args.epochs
        # With a decision file the launcher sets what is live (cores) before the first epoch,
        # then pauses wherever its last decision asked: after a number of epochs or iterations.
        pause_epoch = start_epoch if self.decisions is not None else 0
        window_end, window = 0, None  # the step a window ends at, and its iteration times
        paused = self.decisions is not None
        while True:
            if paused:
                if window is not None:
                    in_progress = epoch + (1 if self.seconds else 0)
                    emit(
                        contract.window_event(
                            in_progress,
                            window,
                            epoch_iterations=self.epoch_iterations,
                            system=self.engine.in_force(),
                        )
                    )
                decision = self._decide(epoch, step)
                if decision is None:
                    break
                window_end = step + decision.iterations if decision.iterations else 0
                window = [] if decision.iterations else None
                pause_epoch = epoch + decision.pause_after if decision.pause_after else 0
            if epoch >= last_epoch:
                break
            # BigDL counts epochs from 1 and stops once state("epoch") > MaxEpoch's bound,
            # and once its iteration count ("neval", from 1) is past MaxIteration's.
            trigger = MaxEpoch(epoch + 1)
            if window_end:
                trigger = TriggerOr(trigger, MaxIteration(window_end))
            self.opt.set_end_when(trigger)
            t0 = time.perf_counter()
            self.opt.optimize()
            self.train_s += time.perf_counter() - t0
            iterations, step = epoch_iterations(self.summary, step, self.args.batchSize)
            self.seconds += iterations.seconds
            self.losses += iterations.loss
            if window is not None:
                window += iterations.seconds
            if self._epoch_ended(epoch):
                epoch += 1
                self._report_epoch(epoch)
            if epoch >= last_epoch:
                break  # all its epochs: nothing is left to decide
            if window_end:
                paused = step >= window_end
            else:
                paused = bool(pause_epoch) and epoch == pause_epoch and not self.seconds
        return epoch

    def _decide(self, epoch: int, step: int) -> contract.Decision | None:
        """The launcher's decision at this pause, applied; None to stop here."""
        assert self.decisions is not None
        decision = contract.await_decision(
            self.decisions, epoch, self.args.decisionTimeout, iteration=step
        )
        if decision is None:
            print(f"lenet5: no decision after epoch {epoch}; stopping", file=sys.stderr)
            return None
        if not decision.go_on:
            return None
        refused = self.engine.apply(decision.live)
        if refused:
            emit(contract.refused_event(epoch, refused))
            return None
        return decision

    def _epoch_ended(self, epoch: int) -> bool:
        """Whether the optimizer's state has moved past epoch `epoch` + 1 (counted from 1)."""
        method = self.opt.value.optimMethods().values().head()
        return (_optim_state(method)["epoch"] or 0) > epoch + 1

    def _report_epoch(self, epoch: int) -> None:
        from bigdl.dllib.optim.optimizer import Top1Accuracy

        t0 = time.perf_counter()
        accuracy = float(self.model.evaluate(self.val, EVAL_BATCH_SIZE, [Top1Accuracy()])[0].result)
        eval_s = time.perf_counter() - t0
        loss = float(np.mean(self.losses)) if self.losses else float("nan")
        emit(
            contract.epoch_event(
                epoch,
                self.train_s,
                accuracy,
                self.hp,
                eval_s=eval_s,
                loss=loss,
                samples=self.samples,
                system=self.engine.in_force(),
                iterations=len(self.seconds),
                iteration_s=[round(t, 5) for t in self.seconds],
            )
        )
        self.train_s, self.seconds, self.losses = 0.0, [], []


# ------------------------------------------------------------------------------- main


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


def run(args: argparse.Namespace) -> None:
    """The segments of this process: the one launched, then each one the launcher hands over
    (contract.py, "Reuse")."""
    session = Session(APP_DIR)
    try:
        while True:
            train_segment(args, session)
            argv = session.await_next(args.decisionTimeout)
            if argv is None:
                return
            args = parse_args(argv)
    finally:
        session.stop()


def train_segment(args: argparse.Namespace, session: Session) -> None:
    marks = [("launch", time.time())]
    if session.segments:
        first, since = "handover", session.handed_over_at or marks[0][1]
    else:
        first, since = "imports", PYTHON_AT
    hp = hyperparameters(args)
    ckpt = Path(args.checkpoint).expanduser().resolve()
    plan = DataPlan(args)
    meta = read_checkpoint(ckpt, hp, plan)  # fails fast, before Spark starts
    start_epoch = int(meta["epochs_done"]) if meta else 0

    marks.append(("checks", time.time()))
    if session.sc is None:
        plan.start_split()
        session.start()
        marks.append(("spark context", time.time()))
    else:
        session.reset_engine()  # as a fresh process finds it
    sc = session.sc
    summary_dir = tempfile.mkdtemp(prefix="lenet5-summary-")
    try:
        from bigdl.dllib.nn.criterion import ClassNLLCriterion
        from bigdl.dllib.nn.layer import Model
        from bigdl.dllib.optim.optimizer import (
            SGD,
            MaxEpoch,
            Optimizer,
            OptimMethod,
            TrainSummary,
        )
        from bigdl.dllib.utils.common import RNG, callBigDlFunc, get_node_and_core_number

        nodes, cores = get_node_and_core_number()
        if args.batchSize % nodes or (not args.decisionFile and args.batchSize % (nodes * cores)):
            # (with a decision file the launcher sets the cores first, and they are checked then)
            raise AppError(
                f"--batchSize {args.batchSize} must be a multiple of nodes x cores = "
                f"{nodes} x {cores} (BigDL splits every batch evenly over all cores)"
            )
        partitions = args.partitions or sc.defaultParallelism
        key = (plan.identity(), plan.mnist_dir, plan.limit, partitions)
        dataset, data_kept = session.dataset(key, lambda: build_dataset(sc, plan, partitions))
        train, val = dataset.train, dataset.val
        marks.append(("data", time.time()))

        momentum = None
        if meta:
            model = Model.loadModel(str(ckpt / MODEL_FILE))
            optim_method = callBigDlFunc("float", "loadOptimMethod", str(ckpt / OPTIM_FILE))
            if (ckpt / MOMENTUM_FILE).exists():
                momentum = np.load(ckpt / MOMENTUM_FILE)
        else:
            RNG().set_seed(args.seed)  # weight init; BigDL's data shuffling stays unseeded
            model = build_lenet5()
            optim_method = SGD(
                learningrate=args.learningRate,
                learningrate_decay=args.learningRateDecay,
                momentum=args.momentum,
                dampening=0.0,
                nesterov=False,
            ).value
        restored = _optim_state(optim_method)

        opt = Optimizer.create(
            model=model,
            training_set=train,
            criterion=ClassNLLCriterion(),
            end_trigger=MaxEpoch(start_epoch + 1),
            batch_size=args.batchSize,
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
            if not restore_momentum(sc, opt, optim_method, momentum, nodes):
                print(
                    "lenet5: warning: could not co-locate the saved momentum with BigDL's "
                    "model partitions; momentum restarts from zero",
                    file=sys.stderr,
                )
                momentum = None
        marks.append(("model", time.time()))  # built, or loaded from the checkpoint
        summary = TrainSummary(summary_dir, "lenet5")
        opt.set_train_summary(summary)

        emit(
            contract.start_event(
                sc.applicationId,
                start_epoch,
                hp,
                train_samples=dataset.train_samples,
                val_samples=dataset.val_samples,
                data_source=plan.source,
                windows=True,  # it can pause inside an epoch (TrainingLoop)
                reuse=session.reusable,  # it can take the next segment (Session)
                reused=session.segments,  # segments this process ran before this one
                data_kept=data_kept,
                weights=weights_digest(model),
                optimizer_state=restored,
                startup={
                    "python_at": PYTHON_AT if not session.segments else None,
                    "phases_s": startup_phases(first, since, marks),
                },
            )
        )
        steps = ", ".join(f"{name} {t - marks[i][1]:.2f}s" for i, (name, t) in enumerate(marks[1:]))
        print(f"lenet5: startup: {steps}", file=sys.stderr)
        if meta:
            print(
                f"lenet5: resumed {ckpt}: optimizer state {restored}, momentum "
                f"{'restored' if momentum is not None else 'absent'}",
                file=sys.stderr,
            )

        engine = LiveEngine(sc, args.batchSize, nodes)
        loop = TrainingLoop(args, opt, model, val, summary, engine, hp, dataset.train_samples)
        epochs_done = loop.run(start_epoch, max(0, (restored["neval"] or 1) - 1))

        saving = time.perf_counter()
        driver_method = opt.value.optimMethods().values().head()
        new_meta = {
            "format": CHECKPOINT_FORMAT,
            "epochs_done": epochs_done,
            "hyperparameters": hp,
            "data": plan.identity(),
            "optimizer_state": _optim_state(driver_method),
            "momentum_saved": False,
        }
        new_momentum = collect_momentum(opt)  # None when momentum is 0 (SGD keeps no buffer)
        new_meta["momentum_saved"] = new_momentum is not None
        write_checkpoint(ckpt, model, driver_method, new_momentum, new_meta)
        save_s = round(time.perf_counter() - saving, 4)
        emit(contract.end_event(epochs_done, args.checkpoint, save_s=save_s))
    finally:
        shutil.rmtree(summary_dir, ignore_errors=True)


def report_error(message: str) -> None:
    """Put the reason for a failure where the launcher can find it.

    spark-submit runs this script through Spark's PythonRunner, which merges the script's
    stderr into the driver JVM's stdout, so a plain print to stderr ends up on stdout.
    We print it there anyway (human logs), emit a tagged "error" event, and also write it
    to the driver JVM's own stderr (= spark-submit's stderr) when our parent is that JVM.
    """
    line = f"lenet5: error: {message}"
    print(line, file=sys.stderr, flush=True)
    emit(contract.error_event(message))
    try:
        ppid = os.getppid()
        with open(f"/proc/{ppid}/comm") as fh:
            parent_is_jvm = fh.read().strip() == "java"
        if parent_is_jvm:
            with open(f"/proc/{ppid}/fd/2", "w") as fh:
                fh.write(line + "\n")
    except OSError:
        pass  # not Linux, or no access: the stdout copies above remain


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # route flag errors through report_error
        self.print_usage(sys.stderr)
        report_error(message)
        sys.exit(2)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)  # exits 2 on bad flags
    try:
        run(args)
    except AppError as exc:
        report_error(str(exc))
        return 1
    except Exception as exc:  # Spark/BigDL/IO failures: traceback for humans, then the reason
        import traceback

        traceback.print_exc()
        report_error(f"{type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
