// k6, throughput: every VU requests BENCH_URL in a tight loop (no sleep) over its own keep-alive connection
// (run by bench/.k6-venv/bin/k6 from bench/run.py, not by loadgen).
//
//   GOMAXPROCS=1 k6 run --vus 50 --duration 20s -e BENCH_URL=http://127.0.0.1:PORT/ -e BENCH_SUMMARY=s.json k6_tight.js
//
// Response bodies are read (k6's default, discardResponseBodies: false), as loadgen, Locust and the lean loop read
// the 100-byte body. The self-signed certificate of bench/nginx.py needs insecureSkipTLSVerify. Loopback only.
import http from "k6/http";

const URL = __ENV.BENCH_URL || "";
if (!/^https?:\/\/127\.\d+\.\d+\.\d+(:\d+)?\//.test(URL)) {
  throw new Error(`BENCH_URL must be a loopback URL (http(s)://127.x.x.x[:port]/), got "${URL}"`);
}

export const options = {
  vus: 50,          // the command line's --vus and --duration override these
  duration: "20s",
  insecureSkipTLSVerify: true,
  discardResponseBodies: false,
};

export default function () {
  http.get(URL);
}

// The end-of-test summary goes, as JSON, to BENCH_SUMMARY only (nothing on stdout).
export function handleSummary(data) {
  return __ENV.BENCH_SUMMARY ? { [__ENV.BENCH_SUMMARY]: JSON.stringify(data) } : { stdout: JSON.stringify(data) };
}
