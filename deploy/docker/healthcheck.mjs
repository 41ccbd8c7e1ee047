// Container health check without curl in the image: `node deploy/docker/healthcheck.mjs URL`
// exits 0 when URL answers 2xx within 3 s, 1 otherwise (used by compose; Kubernetes probes
// call the URL themselves).
const url = process.argv[2];
if (url === undefined) {
  process.stderr.write("usage: node healthcheck.mjs URL\n");
  process.exit(2);
}
try {
  const response = await fetch(url, { signal: AbortSignal.timeout(3000) });
  await response.arrayBuffer();
  process.exit(response.ok ? 0 : 1);
} catch (err) {
  process.stderr.write(`${url}: ${String(err)}\n`);
  process.exit(1);
}
