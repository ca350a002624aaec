/**
 * A real Kubernetes control plane for tests and the lab: etcd, kube-apiserver
 * and kube-controller-manager from the version-keyed build cache, on loopback
 * ports that were free, in one private temp dir (etcd's data on tmpfs),
 * with token auth and RBAC. start() returns when etcd answers /health, the
 * apiserver /readyz and the controller manager /healthz; stop() (or process
 * exit) kills everything and removes the dir. The apiserver can be stopped and
 * started alone, on the same port and with the same certificates, to test
 * what clients do during an outage.
 *
 * Layout of `dir`: owner.pid, etcd/ (data), apiserver-certs/, kcm-certs/,
 * sa.key, sa.pub, tokens.csv, kubeconfig, logs/<component>.log.
 */
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinaries, type ControlPlaneBinaries } from './binaries.js';
import { randomToken, renderTokenFile, servingCaBundle, writeServiceAccountKeys } from './credentials.js';
import { ControlPlaneError, asError } from './errors.js';
import { onProcessExit } from './exit-hooks.js';
import { apiserverArgs, controllerManagerArgs, DEFAULT_CONTROLLERS, etcdArgs, type ApiserverConfig } from './flags.js';
import { runKubectl, type KubectlOptions } from './kubectl.js';
import { writeKubeconfig } from './kubeconfig.js';
import { freePorts } from './ports.js';
import { ManagedProcess } from './process.js';
import { httpGet, httpOk, waitReady } from './readiness.js';
import { DIR_PREFIX, sweepStaleDirs, writeOwner } from './stale.js';

export interface ControlPlaneOptions {
  /** Default: findBinaries() (versions file + $SLUICE_CACHE). */
  readonly binaries?: ControlPlaneBinaries;
  /** Parent of the temp dir. Default: /dev/shm (tmpfs, for etcd) if writable, else os.tmpdir(). */
  readonly baseDir?: string;
  /** Address every component binds and advertises. Default 127.0.0.1. */
  readonly host?: string;
  /** Default 10.96.0.0/16. */
  readonly serviceClusterIpRange?: string;
  /** Enables the nodeipam controller, which gives Nodes without spec.podCIDR one from this range. */
  readonly clusterCidr?: string;
  /** Controller-manager controllers. Default: DEFAULT_CONTROLLERS. */
  readonly controllers?: readonly string[];
  /** Deadline for each component to become ready. Default 60 s (a cold apiserver on 2 cores takes several). */
  readonly readyTimeoutMs?: number;
  /** SIGTERM → SIGKILL grace per process on stop. Default 5 s. */
  readonly stopGraceMs?: number;
  readonly extraApiserverArgs?: readonly string[];
}

export interface StartupTimings {
  readonly etcdMs: number;
  readonly apiserverMs: number;
  readonly controllerManagerMs: number;
  readonly totalMs: number;
}

export type Component = 'etcd' | 'kube-apiserver' | 'kube-controller-manager';

function defaultBaseDir(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

export class ControlPlane {
  /** https://host:port of the apiserver. */
  readonly server: string;
  readonly kubeconfigPath: string;
  /** Bearer token of the "admin" user (group system:masters). */
  readonly token: string;
  private readonly procs = new Map<Component, ManagedProcess>();
  /** Second apiservers of withSecondApiserver() while they run. */
  private readonly extra = new Set<ManagedProcess>();
  private readonly unhook: () => void;
  private readonly apiserverConfig: ApiserverConfig;
  private readonly certDir: string;
  private caPemValue: string | undefined;
  private timingsValue: StartupTimings | undefined;
  private stopped = false;

  private constructor(
    readonly binaries: ControlPlaneBinaries,
    /** The private temp dir; removed by stop(). */
    readonly dir: string,
    private readonly options: ControlPlaneOptions,
    private readonly ports: { etcdClient: number; etcdPeer: number; apiserver: number; controllerManager: number },
  ) {
    const host = this.host;
    this.server = `https://${host}:${ports.apiserver}`;
    this.kubeconfigPath = join(dir, 'kubeconfig');
    this.token = randomToken();
    this.certDir = join(dir, 'apiserver-certs');
    for (const d of ['etcd', 'apiserver-certs', 'kcm-certs', 'logs']) mkdirSync(join(dir, d), { mode: 0o700 });
    const sa = writeServiceAccountKeys(dir);
    const tokenFile = join(dir, 'tokens.csv');
    writeFileSync(
      tokenFile,
      renderTokenFile([{ name: 'admin', uid: 'sluice-admin', groups: ['system:masters'], token: this.token }]),
      { mode: 0o600 },
    );
    this.apiserverConfig = {
      host,
      securePort: ports.apiserver,
      etcdUrl: this.etcdUrl,
      certDir: this.certDir,
      tokenFile,
      saPublicKeyFile: sa.publicKeyFile,
      saPrivateKeyFile: sa.privateKeyFile,
      serviceClusterIpRange: this.serviceClusterIpRange,
      extraArgs: options.extraApiserverArgs ?? [],
    };
    // If the test process ends without stop(), nothing may outlive it.
    this.unhook = onProcessExit(() => this.killNowAndRemove());
  }

  /** Starts etcd, the apiserver and the controller manager; on any failure stops what started and throws. */
  static async start(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const binaries = options.binaries ?? findBinaries();
    const host = options.host ?? '127.0.0.1';
    const [etcdClient, etcdPeer, apiserver, controllerManager] = await freePorts(4, host);
    if (etcdClient === undefined || etcdPeer === undefined || apiserver === undefined || controllerManager === undefined) {
      throw new Error('freePorts returned fewer ports than asked');
    }
    const base = options.baseDir ?? defaultBaseDir();
    sweepStaleDirs(base);
    const dir = mkdtempSync(join(base, DIR_PREFIX));
    let cp: ControlPlane;
    try {
      writeOwner(dir);
      cp = new ControlPlane(binaries, dir, options, { etcdClient, etcdPeer, apiserver, controllerManager });
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    try {
      await cp.boot();
      return cp;
    } catch (e) {
      await cp.stop();
      throw e;
    }
  }

  get host(): string {
    return this.options.host ?? '127.0.0.1';
  }

  get etcdUrl(): string {
    return `http://${this.host}:${this.ports.etcdClient}`;
  }

  get apiserverPort(): number {
    return this.ports.apiserver;
  }

  get serviceClusterIpRange(): string {
    return this.options.serviceClusterIpRange ?? '10.96.0.0/16';
  }

  /** PEM bundle that verifies the apiserver (its self-signed cert and CA). */
  get caPem(): string {
    if (this.caPemValue === undefined) throw new ControlPlaneError('invalid-state', 'the apiserver has not started yet');
    return this.caPemValue;
  }

  /** How long each component took to become ready in start(). */
  get timings(): StartupTimings {
    if (this.timingsValue === undefined) throw new ControlPlaneError('invalid-state', 'start() has not finished');
    return this.timingsValue;
  }

  get apiserverRunning(): boolean {
    return this.procs.get('kube-apiserver')?.running ?? false;
  }

  /** Pids of the components still running. */
  pids(): Map<Component, number> {
    const out = new Map<Component, number>();
    for (const [name, p] of this.procs) if (p.running && p.pid !== undefined) out.set(name, p.pid);
    return out;
  }

  /** Path of a component's full log (inside dir: gone after stop()). */
  logFile(component: Component): string {
    return join(this.dir, 'logs', `${component}.log`);
  }

  /** The last lines a component printed, for failure messages. */
  tail(component: Component, lines = 25): string {
    return this.procs.get(component)?.tail(lines) ?? '';
  }

  /** Runs the built kubectl with this control plane's kubeconfig; resolves with stdout. */
  kubectl(args: readonly string[], options: KubectlOptions = {}): Promise<string> {
    return runKubectl(this.binaries.kubectl, this.kubeconfigPath, args, options);
  }

  /** Stops the apiserver alone (etcd and the controller manager keep running). */
  async stopApiserver(): Promise<void> {
    this.assertLive();
    const p = this.procs.get('kube-apiserver');
    if (!p?.running) throw new ControlPlaneError('invalid-state', 'the apiserver is not running', 'kube-apiserver');
    await p.stop(this.stopGraceMs);
  }

  /** Starts the apiserver again on the same port with the same certs and token; resolves when /readyz is ok (ms taken). */
  async startApiserver(): Promise<number> {
    this.assertLive();
    if (this.apiserverRunning) throw new ControlPlaneError('invalid-state', 'the apiserver is already running', 'kube-apiserver');
    return this.launchApiserver();
  }

  /**
   * Runs `fn` against a second apiserver on the same etcd (its own port and
   * self-signed certificate, the same token), then stops it. This is how
   * objects change while the main apiserver is down — a fresh apiserver
   * started on the same data — so that clients of the main one find, when it
   * returns, changes they could not have watched.
   */
  async withSecondApiserver<T>(fn: (kubectl: (args: readonly string[], options?: KubectlOptions) => Promise<string>) => Promise<T>): Promise<T> {
    this.assertLive();
    const [port] = await freePorts(1, this.host);
    if (port === undefined) throw new Error('freePorts returned no port');
    const certDir = join(this.dir, 'apiserver-2-certs');
    mkdirSync(certDir, { recursive: true, mode: 0o700 });
    const p = ManagedProcess.start({
      name: 'kube-apiserver-2',
      file: this.binaries.kubeApiserver,
      args: apiserverArgs({ ...this.apiserverConfig, securePort: port, certDir }),
      logFile: join(this.dir, 'logs', 'kube-apiserver-2.log'),
    });
    this.extra.add(p);
    try {
      const kubeconfig = join(this.dir, 'kubeconfig-2');
      const server = `https://${this.host}:${port}`;
      await waitReady({
        component: 'kube-apiserver-2',
        process: p,
        deadlineMs: this.readyTimeoutMs,
        check: this.apiserverReady(certDir, server, (caPem) => writeKubeconfig(kubeconfig, { server, caPem, token: this.token })),
      });
      return await fn((args, options = {}) => runKubectl(this.binaries.kubectl, kubeconfig, args, options));
    } finally {
      await p.stop(this.stopGraceMs);
      this.extra.delete(p);
    }
  }

  async restartApiserver(): Promise<number> {
    await this.stopApiserver();
    return this.startApiserver();
  }

  /** Stops every component (controller manager, apiserver, etcd) and removes dir. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const p of this.extra) await p.stop(this.stopGraceMs);
    for (const name of ['kube-controller-manager', 'kube-apiserver', 'etcd'] as const) {
      await this.procs.get(name)?.stop(this.stopGraceMs);
    }
    rmSync(this.dir, { recursive: true, force: true });
    this.unhook();
  }

  private get stopGraceMs(): number {
    return this.options.stopGraceMs ?? 5000;
  }

  private get readyTimeoutMs(): number {
    return this.options.readyTimeoutMs ?? 60000;
  }

  private assertLive(): void {
    if (this.stopped) throw new ControlPlaneError('invalid-state', 'the control plane was stopped');
  }

  private spawn(component: Component, file: string, args: readonly string[]): ManagedProcess {
    const p = ManagedProcess.start({ name: component, file, args, logFile: this.logFile(component) });
    this.procs.set(component, p);
    return p;
  }

  private async boot(): Promise<void> {
    const t0 = performance.now();
    const etcd = this.spawn(
      'etcd',
      this.binaries.etcd,
      etcdArgs({ host: this.host, clientPort: this.ports.etcdClient, peerPort: this.ports.etcdPeer, dataDir: join(this.dir, 'etcd') }),
    );
    const etcdMs = await waitReady({
      component: 'etcd',
      process: etcd,
      deadlineMs: this.readyTimeoutMs,
      check: async () => {
        // /health is 200 with {"health":"false"} while etcd has no leader.
        const why = await httpOk({ url: `${this.etcdUrl}/health` })();
        if (why !== undefined) return why;
        const r = await httpGet({ url: `${this.etcdUrl}/health` });
        return /"health":\s*"true"/.test(r.body) ? undefined : `etcd /health: ${r.body.trim()}`;
      },
    });

    const apiserverMs = await this.launchApiserver();
    writeKubeconfig(this.kubeconfigPath, { server: this.server, caPem: this.caPem, token: this.token });

    const kcm = this.spawn(
      'kube-controller-manager',
      this.binaries.kubeControllerManager,
      controllerManagerArgs({
        host: this.host,
        securePort: this.ports.controllerManager,
        kubeconfig: this.kubeconfigPath,
        certDir: join(this.dir, 'kcm-certs'),
        controllers: this.options.controllers ?? DEFAULT_CONTROLLERS,
        serviceClusterIpRange: this.serviceClusterIpRange,
        ...(this.options.clusterCidr !== undefined ? { clusterCidr: this.options.clusterCidr } : {}),
      }),
    );
    const controllerManagerMs = await waitReady({
      component: 'kube-controller-manager',
      process: kcm,
      deadlineMs: this.readyTimeoutMs,
      // Its serving cert is self-signed in memory and used for nothing else.
      check: httpOk({ url: `https://${this.host}:${this.ports.controllerManager}/healthz`, insecure: true }),
    });
    this.timingsValue = { etcdMs, apiserverMs, controllerManagerMs, totalMs: performance.now() - t0 };
  }

  private async launchApiserver(): Promise<number> {
    const p = this.spawn('kube-apiserver', this.binaries.kubeApiserver, apiserverArgs(this.apiserverConfig));
    return waitReady({
      component: 'kube-apiserver',
      process: p,
      deadlineMs: this.readyTimeoutMs,
      check: this.apiserverReady(this.certDir, this.server, (ca) => (this.caPemValue ??= ca)),
    });
  }

  /**
   * Readiness of an apiserver that self-signs into certDir: its certificate
   * (written before it listens) gives the CA bundle, handed to onCa, that
   * verifies its /readyz.
   */
  private apiserverReady(certDir: string, server: string, onCa: (caPem: string) => void): () => Promise<string | undefined> {
    const certFile = join(certDir, 'apiserver.crt');
    return async () => {
      if (!existsSync(certFile)) return `no ${certFile} yet`;
      let ca: string;
      try {
        ca = servingCaBundle(certDir);
      } catch (e) {
        return `reading ${certFile}: ${asError(e).message}`; // possibly half-written: retry
      }
      onCa(ca);
      return httpOk({ url: `${server}/readyz`, ca, token: this.token })();
    };
  }

  /** Exit hook: SIGKILL whatever runs and remove dir, synchronously. */
  private killNowAndRemove(): void {
    for (const p of [...this.extra, ...this.procs.values()]) p.killNow();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
