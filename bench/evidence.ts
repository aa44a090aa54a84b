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
// resident memory during each phase, `peak_heap_mb_*` its peak V8 heap. Here the API server, kwok
// and this process share two cores a loopback away, so each log costs CPU, not waiting, and the
// sequential loop is already CPU bound. A real cluster is a network away: the same pair of phases is
// then measured again through a local TCP relay that holds every chunk for half of
// `MIMIR_BENCH_RTT_MS` (default 10; 0 skips it) each way (`speedup_rtt`). The deployment is created
// in its own namespace and deleted at the end. The last line printed is one JSON object.
import * as k8s from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createKubernetesActivities, type KubeTarget } from '../activities/kubernetes.js';
import { KUBE_CONTEXT } from '../sandbox/kubernetes.js';
import { sandboxEnv, sandboxInstance, sandboxUp } from '../sandbox/index.js';

const PODS = Number(process.env.MIMIR_BENCH_PODS ?? 240);
const CONCURRENCY = Number(process.env.MIMIR_BENCH_CONCURRENCY ?? 32);
const RTT_MS = Number(process.env.MIMIR_BENCH_RTT_MS ?? 10);
const NAMESPACE = 'bench-evidence';
const NAME = 'mimir-api'; // its container's logs are the sandbox's mimir-api log (sandbox/kube/world.ts)
const MB = 1024 * 1024;
const CLOCK_TICKS = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The sandbox's control-plane processes (their command line names its state directory), by binary name. */
function controlPlane(stateDir: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a.includes(`${stateDir}/kubernetes`))) out.set(Number(pid), basename(argv[0]!));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** CPU seconds used so far by each named process group: `capture` (this process) and each control-plane binary. */
function cpuSeconds(procs: Map<number, string>): Record<string, number> {
  const self = process.cpuUsage();
  const out: Record<string, number> = { capture: (self.user + self.system) / 1e6 };
  for (const [pid, name] of procs) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      out[name] = (out[name] ?? 0) + (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime, stime
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Runs `fn`, sampling memory every 5 ms: seconds taken, peak RSS and heap, CPU seconds of this process and of `procs`. */
async function measured<T>(procs: Map<number, string>, fn: () => Promise<T>) {
  global.gc?.();
  const cpu0 = cpuSeconds(procs);
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
    const s = (performance.now() - t0) / 1000;
    const cpu1 = cpuSeconds(procs);
    const cpu = Object.fromEntries(Object.entries(cpu1).map(([k, v]) => [k, round(v - (cpu0[k] ?? 0), 2)]));
    const cpuTotal = Object.values(cpu).reduce((a, b) => a + b, 0);
    return { value, s, peakRssMb: rss / MB, peakHeapMb: heap / MB, cpu, cpuBusy: cpuTotal / s / cpus().length };
  } finally {
    clearInterval(sampler);
  }
}

/**
 * A TCP relay to `host:port` that delivers every chunk, both ways, `rttMs / 2` late (in order): the
 * round trip of a network between this process and the API server. TLS passes through untouched.
 */
async function delayingRelay(host: string, port: number, rttMs: number) {
  const sockets = new Set<Socket>();
  const late = (from: Socket, to: Socket) => {
    from.on('data', (chunk) =>
      setTimeout(() => {
        if (to.writable) to.write(chunk);
      }, rttMs / 2),
    );
    from.on('end', () => setTimeout(() => to.end(), rttMs / 2));
    from.on('error', () => to.destroy());
    from.on('close', () => setTimeout(() => to.destroy(), rttMs / 2));
  };
  // No Nagle on either leg: a relay that coalesces small writes would add delayed-ACK waits of its own.
  const server = createServer({ noDelay: true }, (client) => {
    const upstream = connect({ port, host, noDelay: true });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    late(client, upstream);
    late(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

async function main() {
  const inst = sandboxInstance(process.env.MIMIR_BENCH_SANDBOX ?? 'bench');
  await sandboxUp(inst, { log: (l) => console.log(`sandbox: ${l}`) });
  Object.assign(process.env, sandboxEnv(inst));
  const procs = controlPlane(inst.stateDir);
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
    const sequential = await measured(procs, () =>
      activities.captureLogs({ target, deployment: NAME, dir: join(dir, 'sequential'), concurrency: 1 }),
    );
    const bounded = await measured(procs, () =>
      activities.captureLogs({ target, deployment: NAME, dir: join(dir, 'bounded'), concurrency: CONCURRENCY }),
    );

    // The same pair through the relay: a kubeconfig whose server is the relay (same certificate: it is 127.0.0.1 too).
    let remote: { sequential: typeof sequential; bounded: typeof bounded } | undefined;
    if (RTT_MS > 0) {
      const server = new URL(kc.getCurrentCluster()!.server);
      const relay = await delayingRelay(server.hostname, Number(server.port), RTT_MS);
      try {
        const relayed = join(dir, 'kubeconfig-relayed');
        writeFileSync(relayed, readFileSync(process.env.KUBECONFIG!, 'utf8').replaceAll(server.origin, `https://127.0.0.1:${relay.port}`));
        const far = createKubernetesActivities({ kubeconfig: relayed });
        await far.captureLogs({ target, deployment: NAME, dir: join(dir, 'warmup-rtt'), concurrency: CONCURRENCY });
        remote = {
          sequential: await measured(procs, () =>
            far.captureLogs({ target, deployment: NAME, dir: join(dir, 'sequential-rtt'), concurrency: 1 }),
          ),
          bounded: await measured(procs, () =>
            far.captureLogs({ target, deployment: NAME, dir: join(dir, 'bounded-rtt'), concurrency: CONCURRENCY }),
          ),
        };
      } finally {
        relay.close();
      }
    }

    // The captures are evidence: every file's recorded hash must match its content, both runs complete.
    for (const run of [sequential.value, bounded.value, ...(remote ? [remote.sequential.value, remote.bounded.value] : [])]) {
      if (run.files.length !== PODS || run.missing.length > 0) throw new Error(`incomplete capture: ${run.files.length} of ${PODS}`);
      for (const f of run.files) {
        if (createHash('sha256').update(readFileSync(f.file)).digest('hex') !== f.sha256) throw new Error(`hash mismatch: ${f.file}`);
      }
    }
    const bytes = bounded.value.files.reduce((t, f) => t + f.bytes, 0);
    const speedup = sequential.s / bounded.s;
    console.log('');
    console.log(`phase                      seconds   pods/s   peak RSS MB   peak heap MB   CPU busy   CPU ms per log by process`);
    for (const [label, r] of [
      ['sequential (1 at a time)', sequential],
      [`bounded (${CONCURRENCY} at a time)`, bounded],
      ...(remote
        ? ([
            [`sequential, ${RTT_MS} ms RTT`, remote.sequential],
            [`bounded, ${RTT_MS} ms RTT`, remote.bounded],
          ] as const)
        : []),
    ] as const) {
      const perLog = Object.entries(r.cpu)
        .filter(([, v]) => v > 0)
        .map(([k, v]) => `${k} ${((v * 1000) / PODS).toFixed(1)}`)
        .join(', ');
      console.log(
        `${label.padEnd(26)} ${r.s.toFixed(2).padStart(7)}  ${(PODS / r.s).toFixed(0).padStart(7)}  ${r.peakRssMb.toFixed(0).padStart(12)}  ${r.peakHeapMb.toFixed(0).padStart(13)}  ${`${(r.cpuBusy * 100).toFixed(0)}%`.padStart(9)}   ${perLog}`,
      );
    }
    const rtt = remote && { ...remote, speedup: remote.sequential.s / remote.bounded.s };
    if (rtt) console.log(`speedup with ${RTT_MS} ms to the API server ${rtt.speedup.toFixed(1)}x`);
    console.log(`speedup ${speedup.toFixed(1)}x; ${PODS} logs, ${(bytes / 1024).toFixed(0)} KiB each run; hashes verified`);
    console.log(
      `CPU busy: the share of the machine's ${cpus().length} cores the capture, the API server, kwok and etcd used during the phase;` +
        ` near 100%, the phase is CPU bound here and more concurrency cannot help. Figures are noisy on a shared machine.`,
    );
    const perLogMs = (r: typeof bounded) => Object.fromEntries(Object.entries(r.cpu).map(([k, v]) => [k, round((v * 1000) / PODS, 2)]));
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
        cpu_busy_sequential: round(sequential.cpuBusy, 2),
        cpu_busy_bounded: round(bounded.cpuBusy, 2),
        cpu_ms_per_log_bounded: perLogMs(bounded),
        ...(rtt
          ? {
              rtt_ms: RTT_MS,
              sequential_rtt_s: round(rtt.sequential.s, 2),
              bounded_rtt_s: round(rtt.bounded.s, 2),
              speedup_rtt: round(rtt.speedup, 2),
              peak_rss_mb_bounded_rtt: round(rtt.bounded.peakRssMb, 1),
              cpu_busy_sequential_rtt: round(rtt.sequential.cpuBusy, 2),
              cpu_busy_bounded_rtt: round(rtt.bounded.cpuBusy, 2),
            }
          : {}),
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
