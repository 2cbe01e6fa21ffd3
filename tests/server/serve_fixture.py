"""Starts `zflow serve` on the tiny Z-Image test model for the Python end-to-end tests.

The tiny model is the golden fixture tests/fixtures/zimage_pipeline/tiny (saved by diffusers
without a tokenizer); a temporary models folder links its parts and the real Qwen3 tokenizer
from ../shared/assets, so the server loads it exactly as it would a downloaded model.
"""
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = os.path.join(ROOT, "tests", "fixtures", "zimage_pipeline", "tiny")
TOKENIZER = os.path.join(ROOT, "..", "shared", "assets", "qwen3_tokenizer")
SKIPPED = 77  # CTest's SKIP_RETURN_CODE for these tests (tests/CMakeLists.txt)


@contextlib.contextmanager
def zflow_server(zflow, extra_args=()):
    """Yields the base URL of a running server; stops it (SIGTERM) and checks its exit code."""
    if not os.path.exists(os.path.join(TOKENIZER, "tokenizer.json")):
        print(f"skipped: shared asset {TOKENIZER} is missing (see ../shared/assets)")
        sys.exit(SKIPPED)
    with tempfile.TemporaryDirectory(prefix="zflow_models_") as models:
        tiny = os.path.join(models, "tiny")
        os.mkdir(tiny)
        for part in os.listdir(TINY):
            os.symlink(os.path.join(TINY, part), os.path.join(tiny, part))
        os.symlink(os.path.abspath(TOKENIZER), os.path.join(tiny, "tokenizer"))
        proc = subprocess.Popen(
            [zflow, "-q", "serve", "--models-dir", models, "--port", "0", *extra_args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = proc.stdout.readline()
        match = re.search(r"serving on (http://\S+?)/?$", line.strip())
        if not match:
            proc.kill()
            sys.exit(f"zflow serve did not start: {line}{proc.stdout.read()}")
        # Keep draining the server's output so it never blocks on a full pipe.
        log = []
        drain = threading.Thread(target=lambda: log.extend(proc.stdout), daemon=True)
        drain.start()
        try:
            yield match.group(1)
        finally:
            proc.terminate()
            code = proc.wait(timeout=30)
            drain.join(timeout=5)
            if code != 0:
                sys.exit(f"zflow serve exited with {code}:\n{''.join(log)}")
