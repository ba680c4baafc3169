"""The local Spark session: one per process, configured like the Glue job expects."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_lock = threading.Lock()
# The Spark driver's heap. A 1M-row (317 MB) file needs less than 2 GiB (bench/RESULTS.md), and the heap is what
# sets the peak memory of a local run; `TICKETFLOW_SPARK_MEMORY=4g` gives a bigger file room.
DEFAULT_DRIVER_MEMORY = "2g"


def require_java() -> None:
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        raise SystemExit(
            "PySpark needs Java 17 and `java` is not on PATH. Install it with:\n"
            "  sudo apt-get install -y openjdk-17-jre-headless"
        )


def local_session(cores: str = "*", memory: str | None = None) -> SparkSession:
    """A quiet local session; created once, then shared (the warm session of the local runtime)."""
    require_java()
    from pyspark.sql import SparkSession

    # Spark warns when the host name resolves to a loopback address, which it always does on one machine.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    log_config = Path(__file__).with_name("log4j2.properties").as_uri()
    with _lock:
        spark = (
            SparkSession.builder.master(f"local[{cores}]")
            .appName("ticketflow")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.memory", memory or os.environ.get("TICKETFLOW_SPARK_MEMORY", DEFAULT_DRIVER_MEMORY))
            # Small local data: few shuffle partitions beat the default 200.
            .config("spark.sql.shuffle.partitions", os.environ.get("TICKETFLOW_SHUFFLE_PARTITIONS", "4"))
            .config("spark.sql.adaptive.enabled", "true")
            .config("spark.sql.session.timeZone", "UTC")
            # The parallel (throughput) collector: a batch job wants throughput, not G1's short pauses. Measured on
            # the 1M-row file, fresh processes interleaved: the job's median 67 s against 73 s with G1 (bench/NOTES.md).
            .config("spark.driver.extraJavaOptions",
                    f"-Duser.timezone=UTC -Dlog4j.configurationFile={log_config} -XX:+UseParallelGC")
            .config(
                "spark.sql.warehouse.dir",
                os.path.join(os.environ.get("TMPDIR", "/tmp"), "ticketflow-warehouse"),
            )
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        return spark
