"""FastHttpUser with rest(): JSON bodies parsed into .js; a non-JSON body or a failed assert is a failure."""

from locust import FastHttpUser, constant, task


class Api(FastHttpUser):
    wait_time = constant(0.02)

    @task
    def post_json(self):
        with self.rest("POST", "/echo", json={"item": 42}) as resp:
            if resp.js["method"] == "POST" and '"item": 42' in resp.js["body"]:
                self.client.get("/bytes/7")

    @task
    def not_json(self):
        with self.rest("GET", "/status/200", name="plain-text"):
            pass

    @task
    def bad_assert(self):
        with self.rest("GET", "/echo", name="asserted") as resp:
            assert resp.js["method"] == "PUT", "wrong method"
