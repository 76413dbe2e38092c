/**
 * bench:tls's inspection phase (docs/contract.md §8): HTTPS lesson pages (1 KB and 100 KB,
 * text/html, every byte read) through lachan intercepting with a content_limit (the
 * shipped phrases of five categories), through squid 5.7 `ssl_bump` (bump all, one
 * worker, its certificate helper; Debian's squid-openssl) and through a bare CONNECT
 * tunnel, each pinned to CPU 0 in turn; the origin and the load generator (this
 * process) on CPU 1. Requests per second and the CPU each target's processes spent
 * per request, medians of interleaved repetitions; the ratios to squid are taken
 * within each repetition (the same minute, whatever the box's load did meanwhile),
 * then their median. The origin counts the TLS connections each target opened to it,
 * per client connection the load opened: about one when the target keeps its origin
 * connections (each sample's clients open theirs anew, and the last one's were cut
 * mid-response), the requests per connection when it pays a handshake per request.
 * With `baseCli` (another build's CLI) its lachan runs beside this one, for A/B in the
 * same minutes. Targets: lachan ≥ 1.5× squid's rate and ≤ 0.67× its CPU per request.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import path from 'node:path';
import { CertificateAuthority, createCaMaterial, initCa } from '../../src/tls/index.js';
import { httpsThroughProxy } from './https-load.js';
import { type PageChoice, servedPage } from './origin.js';
import { startPinned } from './pinned.js';
import { startServe } from './serve.js';
import { SQUID, squidCommonConfig, startSquid } from './squid.js';
import { CLOCK_TICKS_PER_SECOND, freePort, treeCpuTicks } from './proc.js';
import { median } from './stats.js';

const SITE = 'site.bench';
const CATEGORIES = ['adult', 'gambling', 'drugs', 'violence', 'self-harm'];
const CERTGEN = '/usr/lib/squid/security_file_certgen';
const SQUID_TARGET = 'squid 5.7 ssl_bump';

export interface HttpsInspectionRow {
  readonly size: number;
  readonly target: string;
  readonly rps: number;
  readonly cpuUsPerRequest: number;
  /** Medians of the per-repetition ratios to squid; null for squid itself or without squid. */
  readonly rpsVsSquid: number | null;
  readonly cpuVsSquid: number | null;
  /** TLS connections the origin accepted from this target per client connection opened (median). */
  readonly originTlsPerClient: number;
}

/** Whether the installed squid can bump TLS (Debian's squid-openssl, not plain squid). */
export function squidCanBump(): boolean {
  try {
    return execFileSync(SQUID, ['-v'], { encoding: 'utf8' }).includes('--with-openssl');
  } catch {
    return false;
  }
}

function squidBumpConfig(dir: string, port: number): string {
  return `http_port 127.0.0.1:${port} ssl-bump generate-host-certificates=on dynamic_cert_mem_cache_size=16MB tls-cert=${path.join(dir, 'ca.pem')}
sslcrtd_program ${CERTGEN} -s ${path.join(dir, 'ssl_db')} -M 16MB
sslcrtd_children 5 startup=1 idle=1
acl step1 at_step SslBump1
ssl_bump peek step1
ssl_bump bump all
tls_outgoing_options cafile=${path.join(dir, 'origin-ca.pem')}
hosts_file ${path.join(dir, 'hosts')}
${squidCommonConfig(dir)}`;
}

export async function measureHttpsInspection(options: {
  readonly work: string;
  readonly cli: string;
  readonly repo: string;
  readonly bareTunnel: string;
  /** Another build's CLI (e.g. main's): its lachan is measured too, as "before: …". */
  readonly baseCli?: string;
  readonly sizes: readonly number[];
  readonly seconds: number;
  readonly reps: number;
  readonly connections: number;
  /** The pages served (default: the lesson page, uncompressed). */
  readonly pages?: PageChoice;
  readonly log: (line: string) => void;
}): Promise<{ rows: HttpsInspectionRow[]; notes: string[] }> {
  const { work } = options;
  const notes: string[] = [];
  const children: ChildProcess[] = [];
  // The origin and the load generator are this process: keep it off the targets' core.
  execFileSync('taskset', ['-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  const originCa = await createCaMaterial({ schoolName: 'Bench origin CA' });
  const leaf = await (await CertificateAuthority.fromPem(originCa.certPem, originCa.keyPem)).issue(SITE);
  const pages = new Map(options.sizes.map((size) => [`/html/${size}`, servedPage(size, options.pages)]));
  const origin = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    const page = pages.get(req.url ?? '');
    const body = page?.body ?? Buffer.alloc(0);
    const encoding = page?.encoding === undefined ? {} : { 'content-encoding': page.encoding };
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': body.length, ...encoding }).end(body);
  });
  let originHandshakes = 0;
  origin.on('secureConnection', () => originHandshakes++);
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const originPort = (origin.address() as { port: number }).port;
  const originCaFile = path.join(work, 'origin-ca.pem');
  writeFileSync(originCaFile, originCa.certPem);
  writeFileSync(path.join(work, 'hosts'), `127.0.0.1 ${SITE}\n`);
  const certs = path.join(work, 'certs');
  await initCa(certs, { schoolName: 'Bench school' });
  const schoolCaPem = readFileSync(path.join(certs, 'ca.crt'), 'utf8');

  // The same rules with and without content_limit: the difference is what reading the pages costs.
  const rulesFor = (inspect: boolean): string => {
    const dir = path.join(work, inspect ? 'rules-inspect' : 'rules-intercept');
    for (const category of CATEGORIES) {
      mkdirSync(path.join(dir, 'categories', category), { recursive: true });
      copyFileSync(path.join(options.repo, 'rules/categories', category, 'phrases'), path.join(dir, 'categories', category, 'phrases'));
    }
    writeFileSync(
      path.join(dir, 'policy.yaml'),
      `version: 1\ndefault_profile: p\nprofiles:\n  p:\n    name: "Bench"\n    block_categories: [${CATEGORIES.join(', ')}]\n    inspect: true\n${inspect ? '    content_limit: 60\n' : ''}connect_ports: [443, ${originPort}]\nintercept: always\n`,
    );
    return dir;
  };
  const targets: { name: string; port: number; pid: number }[] = [];
  const squidLog = (): string => {
    try {
      return `; squid's cache.log ends:\n${readFileSync(path.join(work, 'squid-bump/cache.log'), 'utf8').split('\n').slice(-8).join('\n')}`;
    } catch {
      return '';
    }
  };
  try {
    const tunnel = await startPinned(0, process.execPath, [options.bareTunnel]);
    children.push(tunnel.child);
    targets.push({ name: 'bare CONNECT tunnel', port: tunnel.line.port as number, pid: tunnel.child.pid! });
    process.env.NODE_EXTRA_CA_CERTS = originCaFile; // inherited by lachan: it verifies the origin
    const builds: [label: string, cli: string][] = [['', options.cli]];
    if (options.baseCli !== undefined) builds.push(['before: ', options.baseCli]);
    for (const [label, cli, inspect] of builds.flatMap(([label, cli]) => [[label, cli, true] as const, [label, cli, false] as const])) {
      const name = `${label}lachan, intercepting${inspect ? ' + inspecting' : ' only'}`;
      const lachan = await startServe(
        { cli, rules: rulesFor(inspect), data: path.join(work, `var-${targets.length}`), hosts: path.join(work, 'hosts'), certs },
        { cpu: 0 },
      );
      children.push(lachan.child);
      targets.push({ name, port: lachan.line.port as number, pid: lachan.child.pid! });
    }
    if (squidCanBump()) {
      const dir = path.join(work, 'squid-bump');
      mkdirSync(dir);
      // squid and its certificate helper run as `proxy`: they must get through a mkdtemp (0700) parent.
      chmodSync(work, 0o755);
      writeFileSync(path.join(dir, 'ca.pem'), `${schoolCaPem}${readFileSync(path.join(certs, 'ca.key'), 'utf8')}`);
      copyFileSync(originCaFile, path.join(dir, 'origin-ca.pem'));
      copyFileSync(path.join(work, 'hosts'), path.join(dir, 'hosts'));
      execFileSync(CERTGEN, ['-c', '-s', path.join(dir, 'ssl_db'), '-M', '16MB'], { stdio: 'ignore' });
      execFileSync('chown', ['-R', 'proxy:proxy', dir]);
      chmodSync(dir, 0o777);
      const port = await freePort();
      const squid = await startSquid(dir, squidBumpConfig(dir, port), port);
      children.push(squid);
      targets.push({ name: SQUID_TARGET, port, pid: squid.pid! });
      notes.push('squid: `ssl_bump bump all`, one worker, security_file_certgen for the leaf certificates, the same school CA.');
    } else {
      notes.push(`squid: ${SQUID} lacks --with-openssl (install squid-openssl); no ssl_bump column.`);
    }

    const measure = async (target: (typeof targets)[number], size: number, seconds: number): Promise<{ rps: number; cpuUs: number; tlsPerClient: number }> => {
      const handshakesBefore = originHandshakes;
      const before = treeCpuTicks(target.pid);
      const result = await httpsThroughProxy({
        proxyPort: target.port,
        host: SITE,
        port: originPort,
        path: `/html/${size}`,
        ca: [originCa.certPem, schoolCaPem],
        connections: options.connections,
        seconds,
      });
      const cpuSeconds = (treeCpuTicks(target.pid) - before) / CLOCK_TICKS_PER_SECOND;
      if (result.requestsPerSecond === 0) options.log(`${target.name}: no request completed (${result.errors} errors)${squidLog()}`);
      const handshakes = originHandshakes - handshakesBefore;
      return {
        rps: result.requestsPerSecond,
        cpuUs: (cpuSeconds * 1e6) / Math.max(1, result.requestsPerSecond * seconds),
        tlsPerClient: handshakes / (options.connections + result.errors),
      };
    };
    for (const target of targets) for (const size of options.sizes) await measure(target, size, 1); // warm-up
    const samples = new Map<string, { rps: number[]; cpuUs: number[]; tlsPerClient: number[] }>();
    for (let rep = 0; rep < options.reps; rep++) {
      const order = targets.map((_, i) => targets[(i + rep) % targets.length]!);
      for (const size of options.sizes) {
        for (const target of order) {
          const sample = await measure(target, size, options.seconds);
          const entry = samples.get(`${size}\u0000${target.name}`) ?? { rps: [], cpuUs: [], tlsPerClient: [] };
          entry.rps.push(sample.rps);
          entry.cpuUs.push(sample.cpuUs);
          entry.tlsPerClient.push(sample.tlsPerClient);
          samples.set(`${size}\u0000${target.name}`, entry);
          options.log(`https rep ${rep + 1}/${options.reps} ${size} B ${target.name}: ${sample.rps.toFixed(0)} req/s cpu ${sample.cpuUs.toFixed(0)} µs/req`);
        }
      }
    }
    const rows: HttpsInspectionRow[] = [];
    for (const size of options.sizes) {
      const squid = samples.get(`${size}\u0000${SQUID_TARGET}`);
      for (const target of targets) {
        const entry = samples.get(`${size}\u0000${target.name}`)!;
        const perRep = (mine: readonly number[], theirs: readonly number[] | undefined): number | null =>
          theirs === undefined || target.name === SQUID_TARGET ? null : median(mine.map((value, rep) => value / theirs[rep]!));
        rows.push({
          size,
          target: target.name,
          rps: median(entry.rps),
          cpuUsPerRequest: median(entry.cpuUs),
          rpsVsSquid: perRep(entry.rps, squid?.rps),
          cpuVsSquid: perRep(entry.cpuUs, squid?.cpuUs),
          originTlsPerClient: median(entry.tlsPerClient),
        });
      }
    }
    return { rows, notes };
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    origin.close();
  }
}
