"""What one BigDL app process keeps between the segments it runs (pipetune/contract.py, "Reuse").

A process may run several segments, of one trial or of several, when the launcher hands it
the next one instead of starting a new spark-submit. It keeps only what the next segment's
flags cannot change: the Spark context (its master, memory and executors are the launch's),
and the training and validation data when the next segment asks for the same data. All the
rest is the segment's own and built afresh: model, optimizer, seeds, BigDL's cached copy of
the training set (released after each segment), and BigDL's core number (set back to the
launch's, as a fresh process would find it).
"""

from __future__ import annotations

import gc
import os
import site
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipetune import contract

# The BigDL jar bundles a log4j2-test.xml, which log4j2 prefers over Spark's defaults: it
# sends every INFO line of Spark to stdout and appends them to "/tmp/${sys:logFilename}".
# Once the JVM is up we replace it: warnings and errors to stderr, nothing to a file.
# (Lines logged before that point still follow the bundled file; a launcher can avoid
# them with -Dlog4j2.configurationFile=... in spark.driver.extraJavaOptions.)
LOG4J2_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <Console name="stderr" target="SYSTEM_ERR">
      <PatternLayout pattern="%d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="warn"><AppenderRef ref="stderr"/></Root>
  </Loggers>
</Configuration>
"""


@dataclass(frozen=True)
class Dataset:
    """Cached training and validation RDD[Sample] and their sizes."""

    train: Any
    val: Any
    train_samples: int
    val_samples: int


class Session:
    """The Spark context of this process, its data, and the handovers between segments."""

    def __init__(self, name: str, py_files: Sequence[Path]) -> None:
        self.name = name  # the app's name, in its messages
        self.py_files = tuple(py_files)  # modules the executors import (SparkContext.addPyFile)
        self.sc: Any = None
        self.segments = 0  # run to their end in this process
        self.handed_over_at = 0.0  # unix time the launcher sent the segment in progress
        self.next_path = contract.next_file()  # set when the launcher may reuse this process
        self._launch_cores = 0
        self._data_key: Any = None
        self._data: Dataset | None = None

    @property
    def reusable(self) -> bool:
        return self.next_path is not None

    # ------------------------------------------------------------------ Spark

    def start(self) -> Any:
        """The Spark context, started at the first segment."""
        if self.sc is None:
            self.sc = init_spark(self.name)
            for path in self.py_files:
                self.sc.addPyFile(str(path))
            self._launch_cores = self._engine().coreNumber()
        return self.sc

    def reset_engine(self) -> None:
        """BigDL's core number back to the launch's: an earlier segment may have changed it."""
        engine = self._engine()
        if engine.coreNumber() != self._launch_cores:
            engine.setCoreNumber(self._launch_cores)

    def _engine(self) -> Any:
        utils = self.sc._jvm.com.intel.analytics.bigdl.dllib.utils
        return getattr(getattr(utils, "Engine$"), "MODULE$")

    # ------------------------------------------------------------------ data

    def dataset(self, key: Any, build: Callable[[], Dataset]) -> tuple[Dataset, bool]:
        """The data made from `key` (what makes it: source, size, seed, partitions), and
        whether it was kept from an earlier segment. Other data is dropped first."""
        if self._data is not None and self._data_key == key:
            return self._data, True
        self._drop_data()
        self._data = build()
        self._data_key = key
        return self._data, False

    def _drop_data(self) -> None:
        if self._data is not None:
            self._data.train.unpersist()
            self._data.val.unpersist()
        self._data = self._data_key = None

    def release(self) -> None:
        """After a segment: unpersist every cached RDD but the kept data (BigDL's copy of the
        training set, its optimizer clones, momentum shards) and let the JVM objects go."""
        keep = set()
        if self._data is not None:
            keep = {self._data.train.id(), self._data.val.id()}
        gc.collect()  # Python proxies of the segment's JVM objects: py4j detaches them
        persistent = self.sc._jsc.getPersistentRDDs()
        for rdd_id in list(persistent.keySet()):
            if int(rdd_id) not in keep:
                persistent.get(rdd_id).unpersist(False)

    # ------------------------------------------------------------------ handovers

    def await_next(self, timeout_s: float) -> list[str] | None:
        """After a segment's `end`: the next segment's app flags, or None to exit."""
        self.segments += 1
        if self.next_path is None:
            return None
        self.release()
        handover = contract.await_next(self.next_path, self.segments, timeout_s)
        if handover is None:
            print(f"{self.name}: no next segment in {timeout_s:g} s; exiting", file=sys.stderr)
            return None
        if handover.exit:
            return None
        self.handed_over_at = handover.sent_at
        return list(handover.argv)

    def stop(self) -> None:
        if self.sc is not None:
            self.sc.stop()
            self.sc = None


def init_spark(name: str) -> Any:
    # BigDL's set_python_home() points PYTHONHOME at the venv (it assumes conda), which
    # kills the Python workers ("No module named 'encodings'"). Point it at the real
    # interpreter and expose the venv's site-packages instead, before the context starts.
    os.environ["PYTHONHOME"] = sys.base_prefix
    os.environ["PYTHONPATH"] = os.pathsep.join(site.getsitepackages())
    from bigdl.dllib.nncontext import init_nncontext

    # redirect_spark_log=False: BigDL would otherwise write ./bigdl.log into the cwd.
    sc = init_nncontext(cluster_mode="spark-submit", redirect_spark_log=False)
    quiet_jvm_logs(sc, name)
    return sc


def quiet_jvm_logs(sc: Any, name: str) -> None:
    fd, path = tempfile.mkstemp(prefix=f"{name}-log4j2-", suffix=".xml")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(LOG4J2_XML)
        jvm = sc._jvm
        jvm.org.apache.logging.log4j.core.config.Configurator.reconfigure(
            jvm.java.io.File(path).toURI()
        )
    except Exception as exc:  # cosmetic only: never fail a trial over logging
        print(f"{name}: warning: could not reconfigure log4j2: {exc}", file=sys.stderr)
    finally:
        os.unlink(path)
