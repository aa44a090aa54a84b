// Benchmark `evidence`: the breach procedure's log capture (the `captureLogs` activity: streamed to
// temp files, SHA-256 while writing, renamed when complete) of a deployment of at least 200 pods on
// the sandbox's kwok nodes, which serve the pods' logs through the real API server, with bounded
// concurrency, against a sequential one-pod-at-a-time loop (the same activity with concurrency 1)
// measured in the same run. Peak memory (RSS and heap, sampled every 5 ms) is reported for both.
// No assertions on timings: it is a benchmark.
//
//   MIMIR_BENCH_SANDBOX=test-3 npm run bench -- evidence      (node --import tsx bench/evidence.ts)
//
// Figures: `speedup` = sequential seconds / bounded seconds; `peak_rss_mb_*` the process's peak
// resident memory during each phase, `peak_heap_mb_*` its peak V8 heap. The deployment is created in
// its own namespace and deleted at the end. The last line printed is one JSON object.
import * as k8s from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createKubernetesActivities, type KubeTarget } from '../activities/kubernetes.js';
import { KUBE_CONTEXT } from '../sandbox/kubernetes.js';
import { sandboxEnv, sandboxInstance, sandboxUp } from '../sandbox/index.js';

const PODS = Number(process.env.MIMIR_BENCH_PODS ?? 240);
const CONCURRENCY = Number(process.env.MIMIR_BENCH_CONCURRENCY ?? 32);
const NAMESPACE = 'bench-evidence';
const NAME = 'mimir-api'; // its container's logs are the sandbox's mimir-api log (sandbox/kube/world.ts)
const MB = 1024 * 1024;
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn`, sampling memory every 5 ms: seconds taken, peak RSS and heap. */
async function measured<T>(fn: () => Promise<T>) {
  global.gc?.();
  const base = process.memoryUsage();
  let rss = base.rss;
  let heap = base.heapUsed;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    rss = Math.max(rss, m.rss);
    heap = Math.max(heap, m.heapUsed);
  }, 5);
  const t0 = performance.now();
  try {
    const value = await fn();
    return { value, s: (performance.now() - t0) / 1000, peakRssMb: rss / MB, peakHeapMb: heap / MB, baseRssMb: base.rss / MB };
  } finally {
    clearInterval(sampler);
  }
}

async function main() {
  const inst = sandboxInstance(process.env.MIMIR_BENCH_SANDBOX ?? 'bench');
  await sandboxUp(inst, { log: (l) => console.log(`sandbox: ${l}`) });
  Object.assign(process.env, sandboxEnv(inst));
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(process.env.KUBECONFIG!);
  kc.setCurrentContext(KUBE_CONTEXT);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const target: KubeTarget = { context: KUBE_CONTEXT, namespace: NAMESPACE };
  const activities = createKubernetesActivities({ kubeconfig: process.env.KUBECONFIG });

  // A namespace of its own, emptied first if a killed run left it.
  const gone = async () => !(await core.readNamespace({ name: NAMESPACE }).catch(() => undefined));
  if (!(await gone())) {
    await core.deleteNamespace({ name: NAMESPACE });
    while (!(await gone())) await sleep(500);
  }
  await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
  const dir = mkdtempSync(join(tmpdir(), 'mimir-bench-evidence-'));
  try {
    await apps.createNamespacedDeployment({
      namespace: NAMESPACE,
      body: {
        metadata: { name: NAME },
        spec: {
          replicas: PODS,
          selector: { matchLabels: { app: NAME } },
          template: { metadata: { labels: { app: NAME } }, spec: { containers: [{ name: NAME, image: 'mimir/api:bench' }] } },
        },
      },
    });
    const t0 = performance.now();
    await activities.scaleDeployment({ target, name: NAME, replicas: PODS, timeoutMs: 10 * 60_000 });
    console.log(`deployment ${NAMESPACE}/${NAME}: ${PODS} pods ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // Warm-up (connections, code paths), not timed.
    await activities.captureLogs({ target, deployment: NAME, dir: join(dir, 'warmup'), concurrency: CONCURRENCY });
    const sequential = await measured(() =>
      activities.captureLogs({ target, deployment: NAME, dir: join(dir, 'sequential'), concurrency: 1 }),
    );
    const bounded = await measured(() =>
      activities.captureLogs({ target, deployment: NAME, dir: join(dir, 'bounded'), concurrency: CONCURRENCY }),
    );

    // The captures are evidence: every file's recorded hash must match its content, both runs complete.
    for (const run of [sequential.value, bounded.value]) {
      if (run.files.length !== PODS || run.missing.length > 0) throw new Error(`incomplete capture: ${run.files.length} of ${PODS}`);
      for (const f of run.files) {
        if (createHash('sha256').update(readFileSync(f.file)).digest('hex') !== f.sha256) throw new Error(`hash mismatch: ${f.file}`);
      }
    }
    const bytes = bounded.value.files.reduce((t, f) => t + f.bytes, 0);
    const speedup = sequential.s / bounded.s;
    console.log('');
    console.log(`phase                      seconds   pods/s   peak RSS MB   peak heap MB`);
    for (const [label, r] of [
      ['sequential (1 at a time)', sequential],
      [`bounded (${CONCURRENCY} at a time)`, bounded],
    ] as const) {
      console.log(
        `${label.padEnd(26)} ${r.s.toFixed(2).padStart(7)}  ${(PODS / r.s).toFixed(0).padStart(7)}  ${r.peakRssMb.toFixed(0).padStart(12)}  ${r.peakHeapMb.toFixed(0).padStart(13)}`,
      );
    }
    console.log(`speedup ${speedup.toFixed(1)}x; ${PODS} logs, ${(bytes / 1024).toFixed(0)} KiB each run; hashes verified`);
    console.log(`Figures are noisy on a shared 2-core machine (the API server, kwok and this process share the cores).`);
    console.log(
      JSON.stringify({
        bench: 'evidence',
        pods: PODS,
        concurrency: CONCURRENCY,
        sequential_s: round(sequential.s, 2),
        bounded_s: round(bounded.s, 2),
        speedup: round(speedup, 2),
        pods_per_s_bounded: round(PODS / bounded.s, 1),
        peak_rss_mb_sequential: round(sequential.peakRssMb, 1),
        peak_rss_mb_bounded: round(bounded.peakRssMb, 1),
        peak_heap_mb_sequential: round(sequential.peakHeapMb, 1),
        peak_heap_mb_bounded: round(bounded.peakHeapMb, 1),
        log_bytes: bytes,
        cpus: cpus().length,
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await apps
      .patchNamespacedDeploymentScale(
        { name: NAME, namespace: NAMESPACE, body: { spec: { replicas: 0 } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      )
      .catch(() => undefined);
    await core.deleteNamespace({ name: NAMESPACE }).catch(() => undefined);
  }
}

try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
}
// A lingering handle must not keep a finished benchmark alive.
setTimeout(() => process.exit(process.exitCode ?? 0), 5_000).unref();
