"""Worker start-up mistakes caught before any connection: a message and exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit


def test_a_data_dir_that_cannot_be_created_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = {**os.environ, "LINEAGE_DATA_DIR": str(blocker / "state")}

    result = subprocess.run(
        [sys.executable, "-m", "lineage_stream", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    message = " ".join(result.stderr.split())  # the console wraps long lines
    assert f"cannot create LINEAGE_DATA_DIR {blocker / 'state'}: Not a directory" in message
    assert "Traceback" not in result.stderr


def test_a_nested_data_dir_is_created(tmp_path: Path) -> None:
    nested = tmp_path / "one" / "two"
    env = {
        **os.environ,
        "LINEAGE_DATA_DIR": str(nested),
        # Nothing listens there: the worker gets past the data dir, then fails to reach Kafka.
        "LINEAGE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
    }

    subprocess.run(
        [sys.executable, "-m", "lineage_stream", "worker"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )

    assert nested.is_dir()
