"""The Dask engine on a real LocalCluster (127.0.0.1, two worker processes): the same
outputs as the local engine, byte for byte, and the same errors."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import distributed
import numpy as np
import pytest

from anomaly.exceptions import InputError
from anomaly.scoring.plan import ScoreOptions, plan_run
from anomaly.scoring.run import execute
from anomaly.synthetic import synthetic_beats, write_beats_csv

from conftest import FAST, read_rows, run_cli

#: Small blocks and two blocks per partition cut a 2 MB file into about eight partitions.
BLOCK_BYTES = 1 << 17
PARTITION_BLOCKS = 2


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def big_batch(tmp_path_factory) -> Path:
    """About 2,000 labelled beats of 96 samples with a header: several partitions."""
    path = tmp_path_factory.mktemp("dask") / "big.csv"
    values, labels = synthetic_beats(1500, 500, length=96, seed=7)
    write_beats_csv(path, values, labels, header=True)
    assert path.stat().st_size > 6 * BLOCK_BYTES * PARTITION_BLOCKS
    return path


def dask_engine(cluster):
    from anomaly.scoring.dask_engine import DaskEngine

    return DaskEngine(cluster.scheduler_address, partition_blocks=PARTITION_BLOCKS)


def score(model_dir, inputs, destination, engine=None, *, output_format="csv", **options):
    """Score ``inputs`` as ``anomaly score`` does (in small blocks), into the file
    ``destination`` (one input) or one file each in the directory ``destination``."""
    options = ScoreOptions(block_bytes=BLOCK_BYTES, **options)
    place = ({"output_dir": destination, "output_format": output_format} if len(inputs) > 1
             else {"output": destination})
    plan = plan_run([str(path) for path in inputs], model_dir, options=options, **place)
    return plan, execute(plan, engine)


@pytest.fixture(scope="module")
def coded_model_dir(normal_traces, tmp_path_factory) -> Path:
    """A model whose score has the code's factor (a code memory, a second ONNX output)."""
    from anomaly.model import AutoencoderDetector

    detector = AutoencoderDetector(**{**FAST, "epochs": 5, "code_distance": "on"})
    return detector.fit(normal_traces).save(tmp_path_factory.mktemp("coded") / "model")


@pytest.mark.parametrize("output_format, model", [("csv", "model_dir"), ("parquet", "model_dir"),
                                                  ("csv", "coded_model_dir")])
def test_dask_outputs_are_byte_identical_to_the_local_engine(
        cluster, big_batch, tmp_path, output_format, model, request):
    model_dir = request.getfixturevalue(model)
    compressed = tmp_path / "packed.csv.gz"
    compressed.write_bytes(gzip.compress(big_batch.read_bytes()))
    inputs = [big_batch, compressed]
    _, local_result = score(model_dir, inputs, tmp_path / "local", output_format=output_format,
                            label_column="label")
    _, dask_result = score(model_dir, inputs, tmp_path / "dask", dask_engine(cluster),
                           output_format=output_format, label_column="label")
    names = sorted(path.name for path in (tmp_path / "local").iterdir())
    assert names == [f"big.scores.{output_format}", f"packed.scores.{output_format}"]
    assert sorted(path.name for path in (tmp_path / "dask").iterdir()) == names
    for name in names:
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes()
    for ours, theirs in zip(local_result.inputs, dask_result.inputs):
        assert (ours.sha256, ours.rows_read, ours.rows_scored, ours.anomalies) == \
            (theirs.sha256, theirs.rows_read, theirs.rows_scored, theirs.anomalies)
    assert dask_result.inputs[0].rows_scored == 2000
    assert not list(tmp_path.rglob(".*parts*")), "staging directories left behind"


def test_dask_run_summary_matches_the_local_one(cluster, model_dir, big_batch, tmp_path):
    """Metrics, histogram scores and the beats drawn in the reports do not depend on the
    engine (ties among top beats are broken by input and line, not by arrival order)."""
    _, local = score(model_dir, [big_batch], tmp_path / "local.csv", label_column="label")
    _, remote = score(model_dir, [big_batch], tmp_path / "dask.csv", dask_engine(cluster),
                      label_column="label")
    local, remote = local.summary, remote.summary
    np.testing.assert_array_equal(local.all_scores, remote.all_scores)
    np.testing.assert_array_equal(local.all_truth, remote.all_truth)
    assert local.metrics() == remote.metrics()
    assert [(b.line, b.score) for b in local.most_anomalous()] == \
        [(b.line, b.score) for b in remote.most_anomalous()]
    assert local.typical_normal().line == remote.typical_normal().line


def test_each_worker_loads_the_model_once(cluster, model_dir, big_batch, tmp_path):
    """Counted from before the two runs, of a model no other test scored on this cluster
    (a copy of it elsewhere)."""
    import shutil

    import anomaly.scoring.dask_engine

    model = shutil.copytree(model_dir, tmp_path / "model")

    def loads() -> dict:
        with distributed.Client(cluster.scheduler_address) as client:
            return client.run(lambda: anomaly.scoring.dask_engine.model_loads)

    before = loads()
    for run in range(2):
        score(model, [big_batch], tmp_path / f"run{run}.csv", dask_engine(cluster),
              label_column="label")
    added = {worker: count - before[worker] for worker, count in loads().items()}
    assert len(added) == 2
    assert all(count <= 1 for count in added.values()), added
    assert sum(added.values()) >= 1


def corrupted(source: Path, target: Path, bad_lines: dict[int, str]) -> Path:
    lines = source.read_text().splitlines(keepends=True)
    for line, text in bad_lines.items():
        lines[line - 1] = text + "\n"
    target.write_text("".join(lines))
    return target


def test_skip_mode_rejects_are_the_same_on_both_engines(cluster, model_dir, big_batch, tmp_path):
    bad = corrupted(big_batch, tmp_path / "bad.csv",
                    {5: "1,2,3", 700: "x" * 20, 1900: ",".join(["nan"] * 97)})
    for name, engine in (("local", None), ("dask", dask_engine(cluster))):
        score(model_dir, [bad], tmp_path / f"{name}.csv", engine, label_column="label",
              on_bad_row="skip")
    assert (tmp_path / "local.csv").read_bytes() == (tmp_path / "dask.csv").read_bytes()
    local_rejects = (tmp_path / "local.rejects.csv").read_bytes()
    assert local_rejects == (tmp_path / "dask.rejects.csv").read_bytes()
    assert [row["line"] for row in read_rows(tmp_path / "dask.rejects.csv")] == ["5", "700", "1900"]


def test_fail_mode_reports_the_first_bad_row_in_file_order_and_writes_nothing(
        cluster, model_dir, big_batch, tmp_path):
    bad = corrupted(big_batch, tmp_path / "bad.csv", {1200: "1,2,3", 1900: "oops"})
    output = tmp_path / "scores.csv"
    with pytest.raises(InputError, match=r"bad\.csv line 1200: expected 97 fields, got 3"):
        score(model_dir, [bad], output, dask_engine(cluster), label_column="label")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bad.csv"]


def test_cli_dask_engine_with_a_scheduler_address(cluster, model_dir, data_dir, tmp_path):
    """A real subprocess, as a scheduled job runs it: same output as the local engine, and
    a bad row is one clear line on stderr (no worker tracebacks) with nothing written."""
    command = [sys.executable, "-m", "anomaly", "score", "-m", str(model_dir),
               "--label-column", "label", "-q"]
    dask = ["--engine", "dask", "--scheduler", cluster.scheduler_address]
    local = subprocess.run(command + [str(data_dir / "batch.csv"), "-o", str(tmp_path / "l.csv")],
                           capture_output=True)
    remote = subprocess.run(command + dask + [str(data_dir / "batch.csv"),
                                              "-o", str(tmp_path / "d.csv")],
                            capture_output=True, text=True)
    assert (local.returncode, remote.returncode) == (0, 0), remote.stderr
    assert (tmp_path / "l.csv").read_bytes() == (tmp_path / "d.csv").read_bytes()
    bad = corrupted(data_dir / "batch.csv", tmp_path / "bad.csv", {40: "1,2,x"})
    failed = subprocess.run(command + dask + [str(bad), "-o", str(tmp_path / "bad.scores.csv")],
                            capture_output=True, text=True)
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines() == [
        f"Error: {bad} line 40: expected 97 fields, got 3"], failed.stderr
    assert not (tmp_path / "bad.scores.csv").exists()


def test_cli_dask_engine_starts_its_own_local_cluster(model_dir, data_dir, in_tmp, capsys):
    code, _, err = run_cli(capsys, "score", data_dir / "batch.csv", "-m", model_dir,
                           "--label-column", "label", "--engine", "dask", "--workers", "2",
                           "--report", "run.json")
    assert code == 0, err
    assert len(read_rows(in_tmp / "scores.csv")) == 250
    assert '"engine": "dask"' in (in_tmp / "run.json").read_text()


def test_the_local_cluster_refuses_a_client_without_its_certificates(model_dir, big_batch,
                                                                     tmp_path, monkeypatch):
    """Dask runs what its clients send: another user of the machine who reached the local
    cluster's port ran code as root through it. The run's cluster speaks TLS with
    certificates only its own client and workers hold; a stranger's client (plain, or TLS
    without them) cannot connect, its HTTP port serves nothing (it served the workers'
    logs and errors, with the inputs' rows in them), its scratch space is the run's own
    (a planted $TMPDIR/dask-scratch-space was used, its lock files opened through links
    and put on sys.path), and the run scores as before."""
    import urllib.error
    import urllib.request

    from anomaly.scoring.dask_engine import DaskEngine

    planted = tmp_path / "tmp" / "dask-scratch-space"
    planted.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (planted / "global.lock").symlink_to(victim)
    (planted / "purge.lock").symlink_to(victim)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    with DaskEngine(workers=1, partition_blocks=PARTITION_BLOCKS) as engine:
        scheduler = engine._cluster.scheduler
        port = scheduler.http_server._sockets[next(iter(scheduler.http_server._sockets))] \
            .getsockname()[1]
        for route in ("info/main/workers.html", "info/main/logs.html", "metrics"):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/{route}", timeout=3)
        address = engine.client.scheduler.address
        assert address.startswith("tls://127.0.0.1:")
        from distributed.security import Security

        # Plain TCP; and TLS that trusts the cluster's certificate authority (so that only
        # the cluster can refuse) with a certificate of the stranger's own making.
        own, stranger = engine._cluster.security, Security.temporary()
        trusting = Security(tls_ca_file=own.tls_ca_file,
                            tls_client_cert=stranger.tls_client_cert,
                            tls_client_key=stranger.tls_client_key, require_encryption=True)
        for where, security in ((address.replace("tls://", "tcp://"), None),
                                (address, trusting)):
            with pytest.raises((OSError, TimeoutError)):
                distributed.Client(where, timeout=3, security=security)
        _, result = score(model_dir, [big_batch], tmp_path / "scores.csv", engine,
                          label_column="label")
        assert result.inputs[0].rows_scored == 2000
    assert victim.read_text() == "precious\n"
    assert sorted(path.name for path in planted.iterdir()) == ["global.lock", "purge.lock"]


@pytest.mark.parametrize("args, message", [
    (["-", "--engine", "dask", "--scheduler", "{address}"], "<stdin>: the dask engine reads files"),
    (["{batch}", "--engine", "dask", "--scheduler", "{address}", "-o", "-"],
     "the dask engine writes output files, not stdout"),
    (["{batch}", "--scheduler", "{address}"], "--scheduler needs --engine dask"),
    # A billion workers asked: a MemoryError (exit 4) before there was a bound.
    (["{batch}", "--engine", "dask", "--workers", "1000000000000"],
     "--workers': Input should be less than or equal to 256"),
])
def test_cli_dask_usage_errors(cluster, model_dir, data_dir, in_tmp, capsys, args, message):
    args = [arg.format(address=cluster.scheduler_address, batch=data_dir / "batch.csv")
            for arg in args]
    code, out, err = run_cli(capsys, "score", *args, "-m", model_dir)
    assert code == 2, err
    assert message in err
    assert sorted(path.name for path in in_tmp.iterdir()) == []


def test_an_unreachable_scheduler_is_a_clear_error(model_dir, big_batch, tmp_path):
    from anomaly.scoring.dask_engine import DaskEngine

    engine = DaskEngine("tcp://127.0.0.1:1", connect_timeout=2)
    with pytest.raises(InputError, match=r"--scheduler tcp://127.0.0.1:1: cannot connect"):
        score(model_dir, [big_batch], tmp_path / "scores.csv", engine)
    assert sorted(path.name for path in tmp_path.iterdir()) == []
