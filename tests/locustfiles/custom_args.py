"""init_command_line_parser adds --target-path and --code (the latter also from $HOOK_CODE); users read them
from environment.parsed_options."""

from locust import HttpUser, constant, events, task


@events.init_command_line_parser.add_listener
def add_arguments(parser):
    parser.add_argument("--target-path", type=str, default="/bytes/1", help="path every user visits")
    parser.add_argument("--code", type=int, default=200, env_var="HOOK_CODE", help="status to ask for")


class Configured(HttpUser):
    wait_time = constant(0.02)

    @task
    def visit(self):
        options = self.environment.parsed_options
        self.client.get(options.target_path)
        self.client.get(f"/status/{options.code}")
