"""A worker getting ready for a test: the script (its own, or the one the master shipped) imported beside
the event loop, and the environment its users will run in."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import gevent

from loadgen.engine.environment import Environment
from loadgen.fleet.protocol import Start
from loadgen.fleet.shipping import SCRIPT_DIR_PREFIX, forget_script, unpack_script
from loadgen.model.errors import UsageError
from loadgen.model.options import TestOptions
from loadgen.script.loader import Script, load_script


class Preparation:
    """Loads the test a Start message describes; remembers a shipped script's folder until ``clean``."""

    def __init__(self, script_path: str | None, worker_id: str) -> None:
        self.script_path = script_path
        self.worker_id = worker_id
        self._script_dir: str | None = None

    def environment(self, message: Start, warn: Callable[[str, str, str], None]) -> Environment:
        """The test's environment; raises whatever stops it (the master reports it)."""
        options = TestOptions.from_dict(message.options)
        # in a helper thread: the loop goes on (heartbeats keep flowing) while a slow script imports
        script = gevent.get_hub().threadpool.apply(self._load_script, (message, options))
        env = Environment(script.user_classes, options, open_model=options.arrival_rate is not None,
                          watch_cpu=False, worker_id=self.worker_id, script=script)
        env.hooks.init()  # the script's init listeners, on the loop (the import ran beside it)
        for kind, text, key in env.preflight(options.plan()):
            warn(kind, text, key)
        return env

    def _load_script(self, message: Start, options: TestOptions) -> Script:
        if self.script_path is not None:
            return load_script(self.script_path, options.user_classes, tags=options.tags,
                               exclude_tags=options.exclude_tags, script_values=self._values(options))
        if not message.script_files:
            raise UsageError("the master sent no script and this worker has none: start it with -f")
        self._script_dir = tempfile.mkdtemp(prefix=f"{SCRIPT_DIR_PREFIX}{os.getpid()}-")
        path = unpack_script(self._script_dir, message.script_files, message.script_name)
        return load_script(path, options.user_classes, module_name=f"loadgen_shipped_{message.test_id[:8]}",
                           tags=options.tags, exclude_tags=options.exclude_tags, script_values=self._values(options))

    @staticmethod
    def _values(options: TestOptions) -> dict[str, Any]:
        """The script's own option values, as the master parsed them."""
        return dict(options.extra.get("script_options") or {})

    def clean(self) -> None:
        """Forget a shipped script: its folder, its sys.path entry and the modules imported from it (a worker
        that stays may get another version of the same files next time)."""
        folder, self._script_dir = self._script_dir, None
        if folder:
            forget_script(folder)
