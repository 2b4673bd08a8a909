"""The scale-out path, tested where it can be here: the tools against an external MongoDB (a
second ``mongod`` started as a one-node replica set, reached through
``FIFTYONE_DATABASE_URI``), and delegated operations executed by two worker processes that
share that database (FiftyOne's delegated-operation service), results visible afterwards."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pymongo import MongoClient

from detection_debugger.datasets.database import mongod_path
from detection_debugger.demo.synthetic import SyntheticConfig, make_coco, write_files

pytestmark = pytest.mark.fiftyone
EXE = Path(sys.executable).with_name("detection-debugger")
PLUGIN = "@datacentric/detection-debugger"


@pytest.fixture(scope="module")
def replica_set(tmp_path_factory):
    """A one-node replica set on its own port; yields the environment that points at it."""
    folder = tmp_path_factory.mktemp("replica")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (folder / "db").mkdir()
    command = [
        str(mongod_path()),
        "--replSet",
        "rs0",
        "--dbpath",
        str(folder / "db"),
        "--port",
        str(port),
        "--bind_ip",
        "127.0.0.1",
        "--fork",
        "--logpath",
        str(folder / "mongod.log"),
        "--pidfilepath",
        str(folder / "pid"),
    ]
    subprocess.run(command, check=True, capture_output=True)
    client = MongoClient("127.0.0.1", port, directConnection=True)
    client.admin.command(
        "replSetInitiate", {"_id": "rs0", "members": [{"_id": 0, "host": f"127.0.0.1:{port}"}]}
    )
    deadline = time.monotonic() + 60
    while not client.admin.command("hello").get("isWritablePrimary"):
        assert time.monotonic() < deadline, "the replica set elected no primary"
        time.sleep(0.2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIFTYONE_DATABASE")}
    env.update(
        {
            "FIFTYONE_DATABASE_URI": f"mongodb://127.0.0.1:{port}/?replicaSet=rs0",
            "FIFTYONE_DATABASE_NAME": "scale_out",
            "FIFTYONE_DATABASE_VALIDATION": "false",
        }
    )
    yield env, client
    client.close()
    pid = int((folder / "pid").read_text())
    os.kill(pid, 15)


def _run(env, *args, timeout=300):
    run = subprocess.run(
        [str(EXE), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert run.returncode == 0, f"{args}: {run.stderr}"
    return run.stdout


def _python(env, code: str, timeout=300):
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_the_tools_work_against_an_external_replica_set(replica_set, tmp_path):
    env, client = replica_set
    gt, results = make_coco(SyntheticConfig(num_images=10, num_classes=3, seed=4))
    paths = write_files(tmp_path, gt, results, gt_format="coco")
    _run(
        env,
        "import",
        "--dataset",
        "remote",
        "--images",
        paths["images"],
        "--gt",
        paths["gt"],
        "--gt-format",
        "coco",
        "--pred",
        paths["pred"],
        "--pred-format",
        "tao",
    )
    first = json.loads(_run(env, "evaluate", "--dataset", "remote", "--pred-field", "predictions"))
    _run(
        env,
        "evaluate",
        "--dataset",
        "remote",
        "--pred-field",
        "predictions",
        "--eval-key",
        "strict",
        "--iou",
        "0.75",
    )
    _run(env, "slices", "list", "--dataset", "remote", "--eval-key", "eval_predictions")
    compared = json.loads(
        _run(env, "compare", "--dataset", "remote", "--eval-keys", "eval_predictions", "strict")
    )
    assert compared["scopes"][0]["stats"]["a"] == first["stats"]
    assert "wrong_class" in _run(
        env,
        "issues",
        "find",
        "--dataset",
        "remote",
        "--gt-field",
        "ground_truth",
        "--pred-field",
        "predictions",
    )
    # the data is in the replica set's database, not in the tests' own server
    assert "scale_out" in client.list_database_names()


def test_two_delegated_workers_share_the_database(replica_set, tmp_path):
    env, _ = replica_set
    names = []
    for i in range(2):
        gt, results = make_coco(SyntheticConfig(num_images=8, num_classes=2, seed=10 + i))
        paths = write_files(tmp_path / f"set{i}", gt, results, gt_format="coco")
        names.append(f"queued-{i}")
        _run(
            env,
            "import",
            "--dataset",
            names[-1],
            "--images",
            paths["images"],
            "--gt",
            paths["gt"],
            "--gt-format",
            "coco",
            "--pred",
            paths["pred"],
            "--pred-format",
            "tao",
        )
    queue = (
        "import fiftyone as fo\n"
        "from fiftyone.operators import execute_operator\n"
        f"for name in {names!r}:\n"
        f"    r = execute_operator('{PLUGIN}/evaluate_detections', ctx={{\n"
        "        'dataset': fo.load_dataset(name), 'request_delegation': True,\n"
        "        'params': {'pred_field': 'predictions', 'eval_key': 'delegated'}})\n"
        "    assert r.delegated, r\n"
        "print('queued')\n"
    )
    assert _python(env, queue).strip().endswith("queued")
    worker = (
        "import sys\n"
        "from fiftyone.operators.delegated import DelegatedOperationService\n"
        "done = DelegatedOperationService().execute_queued_operations(dataset_name=sys.argv[1])\n"
        "print(len(done))\n"
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", worker, name],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in names
    ]
    for process in workers:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
    check = (
        "import fiftyone as fo\n"
        "from fiftyone.operators.delegated import DelegatedOperationService\n"
        f"for name in {names!r}:\n"
        "    ds = fo.load_dataset(name)\n"
        "    ops = DelegatedOperationService().list_operations(dataset_name=name)\n"
        "    print(name, [o.run_state for o in ops], ds.list_evaluations(),\n"
        "          ds.load_evaluation_results('delegated').result.stats['AP'] is not None)\n"
    )
    lines = _python(env, check).strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert "['completed']" in line and "['delegated']" in line and line.endswith("True"), line
