"""Locust's extra add_argument keywords: is_multiple (several values), is_required, is_secret,
include_in_web_ui; the init event sees the parsed values too."""

import os

from locust import HttpUser, constant, events, task


@events.init_command_line_parser.add_listener
def add_arguments(parser):
    parser.add_argument("--paths", is_multiple=True, default=["/bytes/1"], help="paths to visit")
    parser.add_argument("--api-key", is_secret=True, is_required=True, help="secret key")
    parser.add_argument("--hidden", include_in_web_ui=False, default="h", help="not in the web UI")


@events.init.add_listener
def check(environment, **kwargs):
    with open(os.environ["HOOKS_LOG"], "a") as log:
        options = environment.parsed_options
        log.write(f"init {options.api_key} {options.hidden} {len(options.paths)}\n")


class Multi(HttpUser):
    wait_time = constant(0.02)

    def on_start(self):
        self.turn = 0

    @task
    def visit(self):
        paths = self.environment.parsed_options.paths
        self.client.get(paths[self.turn % len(paths)])
        self.turn += 1
