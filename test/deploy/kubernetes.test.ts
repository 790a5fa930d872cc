// The Kubernetes kit (deploy/kubernetes): what `kubectl kustomize` renders is valid against
// the Kubernetes 1.32 schemas (kubernetes-validate, offline: the schemas ship in the package),
// the rendered config passes the bridge's own check-config, and the settings that keep a
// rollout lossless and the pod locked down hold together.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { freePort } from '../airflow/harness.js';
import { SECRET, tempDir } from '../helpers/app.js';
import { spawnListening, stopChild } from '../helpers/process.js';
import { standardWebhookHeaders } from '../helpers/sign.js';
import { freshPostgresDatabase } from '../helpers/stores.js';

const ROOT = join(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/cli/main.js');
const KUBECTL = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((p) => existsSync(p));
if (!KUBECTL) process.stdout.write('test/deploy/kubernetes.test.ts: skipped, kubectl is not installed (kubectl kustomize renders the kit)\n');

type Doc = Record<string, any>;
const render = (dir: string) => execFileSync(KUBECTL!, ['kustomize', join(ROOT, dir)], { encoding: 'utf8' });
const docsOf = (text: string): Doc[] => parseAllDocuments(text).map((d) => d.toJS() as Doc);
const one = (docs: Doc[], kind: string) => {
  const found = docs.filter((d) => d.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
};
const mebibytes = (q: string) => {
  const m = /^(\d+)(Mi|Gi)$/.exec(q);
  if (!m) throw new Error(`unexpected quantity ${q}`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
};
// What the Secret would hold; placeholders only (never committed as a Secret).
const SECRET_ENV = { PLANASONIX_WEBHOOK_SECRET: SECRET, AIRFLOW_USER: 'bridge', AIRFLOW_PASSWORD: 'placeholder', BRIDGE_STORE_URL: 'postgres://bridge:placeholder@db.internal:5432/bridge', BRIDGE_ADMIN_TOKEN: 'x'.repeat(32) };

describe.skipIf(!KUBECTL)('deploy/kubernetes', () => {
  let validator: string;
  beforeAll(() => {
    // Idempotent: instant when the cached venv is there, ~20 s to build it when cold.
    validator = execFileSync('bash', [join(ROOT, 'test/deploy/install.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').at(-1)!;
    expect(spawnSync(process.execPath, [CLI, '--help']).status, 'dist/ is built by the test command').toBe(0);
  }, 180_000);

  /** kubernetes-validate --strict (unknown fields are errors) on the rendered manifests. */
  function validate(text: string) {
    const temp = tempDir();
    try {
      const file = join(temp.dir, 'rendered.yaml');
      writeFileSync(file, text);
      const out = spawnSync(validator, ['--strict', '-k', '1.32.0', file], { encoding: 'utf8' });
      expect(out.status, out.stdout + out.stderr).toBe(0);
      return out.stdout + out.stderr;
    } finally {
      temp.cleanup();
    }
  }

  /** The bridge's own `check-config` on the ConfigMap's file, with the Deployment's env (Secret values as placeholders). */
  const checked = new Map<string, { text: string; config: Config }>();
  function checkConfig(docs: Doc[], env: Record<string, string>) {
    const key = JSON.stringify([one(docs, 'ConfigMap').data, env]);
    if (!checked.has(key)) checked.set(key, runCheckConfig(docs, env));
    return checked.get(key)!;
  }
  function runCheckConfig(docs: Doc[], env: Record<string, string>) {
    const configText = one(docs, 'ConfigMap').data['config.yaml'] as string;
    const temp = tempDir();
    try {
      const file = join(temp.dir, 'config.yaml');
      writeFileSync(file, configText);
      const out = spawnSync(process.execPath, [CLI, 'check-config', '--config', file], { encoding: 'utf8', env: { PATH: process.env.PATH!, ...env } });
      expect(out.status, out.stdout + out.stderr).toBe(0);
      expect(out.stdout).toContain('valid');
    } finally {
      temp.cleanup();
    }
    const parsed = parseConfig(configText, env);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
    return { text: configText, config: parsed.config };
  }

  /** Env of the bridge container as check-config would see it: literal values, and secretKeyRefs filled with placeholders. */
  function containerEnv(container: Doc): Record<string, string> {
    return Object.fromEntries(
      (container.env as Doc[]).map((e) => {
        if (e.value !== undefined) return [e.name, String(e.value)];
        const ref = e.valueFrom?.secretKeyRef;
        expect(ref, `${e.name} is a literal or a secretKeyRef`).toBeDefined();
        return [e.name, SECRET_ENV[e.name as keyof typeof SECRET_ENV] ?? 'placeholder'];
      }),
    );
  }

  describe('base: 2 replicas on PostgreSQL', () => {
    let text: string;
    let docs: Doc[];
    beforeAll(() => {
      text = render('deploy/kubernetes/base');
      docs = docsOf(text);
    });

    it('renders and validates against the Kubernetes 1.32 schemas (strict), with no Secret values in it', () => {
      expect(docs.map((d) => d.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'Namespace', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'ServiceAccount']);
      const report = validate(text);
      for (const d of docs) expect(report).toContain(`passed for resource ${d.kind.toLowerCase()}/${d.metadata.name}`);
      expect(docs.some((d) => d.kind === 'Secret')).toBe(false);
    });

    it('the ConfigMap holds a config that check-config accepts, on PostgreSQL through ${BRIDGE_STORE_URL}, metrics on 0.0.0.0:9464', () => {
      const deployment = one(docs, 'Deployment');
      const container = deployment.spec.template.spec.containers[0];
      const { text: configText, config } = checkConfig(docs, containerEnv(container));
      expect(configText).toMatch(/url: \$\{BRIDGE_STORE_URL\}/);
      expect(config.store.url).toMatch(/^postgres:\/\//);
      expect(config.metrics).toEqual({ host: '0.0.0.0', port: 9464, path: '/metrics' });
      // Every ${VAR} the file needs (no default) is set by the container's env.
      const uncommented = configText.split('\n').map((l) => l.replace(/(^|\s)#.*$/, '')).join('\n');
      const needed = [...uncommented.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]!);
      expect(needed.sort()).toEqual(['AIRFLOW_PASSWORD', 'AIRFLOW_USER', 'BRIDGE_STORE_URL', 'PLANASONIX_WEBHOOK_SECRET']);
      for (const name of needed) expect(container.env.map((e: Doc) => e.name), name).toContain(name);
      // The ConfigMap is what the pod mounts where the command reads it.
      const cm = one(docs, 'ConfigMap');
      const volume = deployment.spec.template.spec.volumes.find((v: Doc) => v.configMap);
      expect(volume.configMap.name).toBe(cm.metadata.name);
      const mount = container.volumeMounts.find((m: Doc) => m.name === volume.name);
      expect(`${mount.mountPath}/config.yaml`).toBe(container.args[container.args.indexOf('--config') + 1]);
    });

    it('secrets come from secretKeyRefs to one Secret: webhook secret, Airflow credentials, store URL, admin token', () => {
      const env = one(docs, 'Deployment').spec.template.spec.containers[0].env as Doc[];
      const refs = Object.fromEntries(env.filter((e) => e.valueFrom).map((e) => [e.name, e.valueFrom.secretKeyRef]));
      expect(refs).toEqual({
        PLANASONIX_WEBHOOK_SECRET: { name: 'planasonix-bridge', key: 'webhook-secret' },
        AIRFLOW_USER: { name: 'planasonix-bridge', key: 'airflow-user' },
        AIRFLOW_PASSWORD: { name: 'planasonix-bridge', key: 'airflow-password' },
        BRIDGE_STORE_URL: { name: 'planasonix-bridge', key: 'store-url' },
        BRIDGE_ADMIN_TOKEN: { name: 'planasonix-bridge', key: 'admin-token', optional: true },
      });
    });

    it('stops losslessly: grace period > preStop sleep + server.shutdown_timeout; rolling update keeps a replica; PDB keeps one', () => {
      const deployment = one(docs, 'Deployment');
      const pod = deployment.spec.template.spec;
      const { config } = checkConfig(docs, containerEnv(pod.containers[0]));
      const preStop = pod.containers[0].lifecycle.preStop.exec.command as string[];
      expect(preStop[0]).toMatch(/sleep$/);
      const sleepS = Number(preStop[1]);
      expect(sleepS).toBeGreaterThanOrEqual(3);
      expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(sleepS * 1000 + config.server.shutdown_timeout);
      expect(config.server.shutdown_timeout).toBe(8000);
      expect(deployment.spec.replicas).toBe(2);
      expect(deployment.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
      const pdb = one(docs, 'PodDisruptionBudget');
      expect(pdb.spec.minAvailable).toBeLessThan(deployment.spec.replicas);
      expect(pdb.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
    });

    it('probes: liveness /healthz and readiness /readyz on the webhook port, readiness timeout above the 2 s Airflow probe', () => {
      const deployment = one(docs, 'Deployment');
      const container = deployment.spec.template.spec.containers[0];
      const { config } = checkConfig(docs, containerEnv(container));
      const port = (name: string) => container.ports.find((p: Doc) => p.name === name).containerPort;
      expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
      expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
      expect(container.readinessProbe.timeoutSeconds).toBeGreaterThan(2);
      expect(port('http')).toBe(config.server.port);
      expect(port('metrics')).toBe(config.metrics!.port);
      const annotations = deployment.spec.template.metadata.annotations;
      expect(annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(config.metrics!.port), 'prometheus.io/path': config.metrics!.path });
    });

    it('locked down: non-root uid 1000, read-only root filesystem with an emptyDir /tmp, no privilege escalation, no capabilities, no API token', () => {
      const pod = one(docs, 'Deployment').spec.template.spec;
      const container = pod.containers[0];
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } });
      expect(container.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
      const tmp = container.volumeMounts.find((m: Doc) => m.mountPath === '/tmp');
      expect(pod.volumes.find((v: Doc) => v.name === tmp.name).emptyDir).toBeDefined();
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(one(docs, 'Namespace').metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    });

    it('resources from the measured RSS: request above the 159 MB peak, limit at least twice the request', () => {
      const { requests, limits } = one(docs, 'Deployment').spec.template.spec.containers[0].resources;
      expect(mebibytes(requests.memory) * 1.048576).toBeGreaterThan(159);
      expect(mebibytes(limits.memory)).toBeGreaterThanOrEqual(2 * mebibytes(requests.memory));
      expect(requests.cpu).toBeDefined();
    });

    it('NetworkPolicy: webhook port from anywhere, metrics port only from the monitoring namespace; egress DNS, PostgreSQL, Airflow', () => {
      const deployment = one(docs, 'Deployment');
      const policy = one(docs, 'NetworkPolicy').spec;
      expect(policy.podSelector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
      expect(deployment.spec.template.metadata.labels).toMatchObject(deployment.spec.selector.matchLabels);
      expect(policy.policyTypes).toEqual(['Ingress', 'Egress']);
      const http = policy.ingress.find((r: Doc) => r.ports.some((p: Doc) => p.port === 'http'));
      expect(http.from).toBeUndefined();
      const metrics = policy.ingress.find((r: Doc) => r.ports.some((p: Doc) => p.port === 'metrics'));
      expect(metrics.from).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
      expect(metrics.ports).toHaveLength(1);
      const egressPorts = policy.egress.flatMap((r: Doc) => r.ports.map((p: Doc) => p.port));
      expect(egressPorts).toEqual(expect.arrayContaining([53, 5432, 8080]));
      // The DNS peer selects kube-dns itself, not pods carrying the bridge's labels.
      expect(policy.egress[0].to[0].podSelector.matchLabels).toEqual({ 'k8s-app': 'kube-dns' });
      const service = one(docs, 'Service').spec;
      expect(service.selector).toEqual(deployment.spec.selector.matchLabels);
      expect(service.ports.map((p: Doc) => [p.name, p.port])).toEqual([['http', 8787], ['metrics', 9464]]);
    });
  });

  it('base: two `serve` processes on one PostgreSQL database with the rendered config and the Deployment\'s env are ready, scraped on their metrics port, and dedupe across each other', async () => {
    const docs = docsOf(render('deploy/kubernetes/base'));
    const container = one(docs, 'Deployment').spec.template.spec.containers[0];
    const db = await freshPostgresDatabase();
    const temp = tempDir();
    const replicas: Awaited<ReturnType<typeof spawnListening>>[] = [];
    try {
      // The shipped file with only the two fixed ports moved (8787 and 9464 may be taken here).
      const metricsPorts = [await freePort(), 0];
      metricsPorts[1] = await freePort(metricsPorts);
      const env = { ...containerEnv(container), BRIDGE_STORE_URL: db.url };
      for (const [i, metricsPort] of metricsPorts.entries()) {
        const file = join(temp.dir, `config-${i}.yaml`);
        const text = (one(docs, 'ConfigMap').data['config.yaml'] as string).replace(/^  port: 8787$/m, '  port: 0').replace('port: 9464', `port: ${metricsPort}`);
        expect(text.split('\n').filter((l) => !/^\s*#/.test(l) && /8787|9464/.test(l))).toEqual([]);
        writeFileSync(file, text);
        replicas.push(await spawnListening([CLI, 'serve', '--config', file], `kit-replica-${i}`, env));
      }
      for (const [i, r] of replicas.entries()) {
        expect((await fetch(`${r.url}/healthz`)).status).toBe(200);
        const ready = await fetch(`${r.url}/readyz`);
        expect(ready.status, await ready.clone().text()).toBe(200);
        // /metrics is on its own listener (0.0.0.0:<port>), not on the webhook port.
        expect((await fetch(`${r.url}/metrics`)).status).toBe(404);
        const metrics = await (await fetch(`http://127.0.0.1:${metricsPorts[i]}/metrics`)).text();
        expect(metrics).toMatch(/^bridge_ready 1$/m);
      }
      const body = JSON.stringify({ id: 'evt_kit', type: 'run.succeeded', created_at: new Date().toISOString(), data: { run_id: 'run_kit', pipeline_id: 'pl_kit', status: 'succeeded' } });
      const post = (url: string) => fetch(`${url}/webhooks/planasonix`, { method: 'POST', headers: { 'content-type': 'application/json', ...standardWebhookHeaders(SECRET, 'msg_kit', Math.floor(Date.now() / 1000), body) }, body });
      expect((await post(replicas[0]!.url)).status).toBe(202);
      expect((await post(replicas[1]!.url)).status).toBe(200);
    } finally {
      for (const r of replicas) await stopChild(r.child);
      await db.drop();
      temp.cleanup();
    }
  }, 60_000);

  describe('overlays/sqlite-single: one replica on SQLite with a PersistentVolumeClaim', () => {
    let text: string;
    let docs: Doc[];
    beforeAll(() => {
      text = render('deploy/kubernetes/overlays/sqlite-single');
      docs = docsOf(text);
    });

    it('renders and validates (strict); one replica, Recreate, no PodDisruptionBudget, no PostgreSQL egress', () => {
      expect(docs.map((d) => d.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'Namespace', 'NetworkPolicy', 'PersistentVolumeClaim', 'Service', 'ServiceAccount']);
      validate(text);
      const deployment = one(docs, 'Deployment');
      expect(deployment.spec.replicas).toBe(1);
      expect(deployment.spec.strategy).toEqual({ type: 'Recreate' });
      const egressPorts = one(docs, 'NetworkPolicy').spec.egress.flatMap((r: Doc) => r.ports.map((p: Doc) => p.port));
      expect(egressPorts.sort()).toEqual([53, 53, 8080]);
    });

    it('the store is sqlite:/var/lib/planasonix-bridge/bridge.db on the claim, and the config passes check-config', () => {
      const pod = one(docs, 'Deployment').spec.template.spec;
      const container = pod.containers[0];
      const storeEnv = container.env.filter((e: Doc) => e.name === 'BRIDGE_STORE_URL');
      expect(storeEnv).toEqual([{ name: 'BRIDGE_STORE_URL', value: 'sqlite:/var/lib/planasonix-bridge/bridge.db' }]);
      const { config } = checkConfig(docs, containerEnv(container));
      expect(config.store.url).toBe('sqlite:/var/lib/planasonix-bridge/bridge.db');
      const data = container.volumeMounts.find((m: Doc) => m.mountPath === '/var/lib/planasonix-bridge');
      const claim = pod.volumes.find((v: Doc) => v.name === data.name).persistentVolumeClaim.claimName;
      const pvc = one(docs, 'PersistentVolumeClaim');
      expect(pvc.metadata.name).toBe(claim);
      expect(pvc.spec.accessModes).toEqual(['ReadWriteOnce']);
      expect(pod.securityContext.fsGroup).toBe(1000);
      expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
    });
  });
});
