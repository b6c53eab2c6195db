"""BigDL's SGD momentum, which lives on the executors: gathered to save it, seeded on resume.

DistriOptimizer shards the parameters over its partitions (one per executor) and each
executor runs its own clone of the SGD on its shard, so the momentum buffer ("dfdx")
lives only on the executors: the driver's OptimMethod never holds it (and
OptimMethod.save would drop it anyway), and optimize() normally starts every call from
fresh clones of the driver's SGD, i.e. with zero momentum at every epoch boundary.
With reserveOptim(true) the optimizer keeps the executor clones in its cached
`previousOptim` RDD between optimize() calls and trains on those objects in place.
We collect that RDD to save the buffer (re-assembled into one vector, so a resume may use
another executor count), and on resume build a cached RDD of clones of the loaded SGD
holding the right slices, placed on the executors that hold BigDL's training partitions,
and hand it to the optimizer as `previousOptim`. The driver's SGD state table (epoch,
neval, evalCounter: the step of the learning-rate decay) survives OptimMethod.save/load.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def shard_range(total: int, shards: int, index: int) -> tuple[int, int]:
    """(start, count) of shard `index` when `total` parameters are split over `shards`, as
    BigDL's AllReduceParameter slices them."""
    if shards <= 0 or not 0 <= index < shards:
        raise ValueError(f"shard {index} of {shards}")
    base, extra = divmod(total, shards)
    start = index * base + min(index, extra)
    return start, base + (1 if index < extra else 0)


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
    sc: Any, opt: Any, optim_method: Any, momentum: np.ndarray, nodes: int, app: str
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
        start, count = shard_range(len(momentum), nodes, pid)
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
    shards = jsc.makeRDD(seq, class_tag).setName(f"{app}-momentum").cache()  # live objects
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
