import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createNamespace, REPO_ROOT } from './harness/index.js';

// No Docker daemon runs here (nor in CI), and hadolint is not installable offline: the
// Dockerfile and the compose file are checked by reading them, for what a reviewer
// would refuse: a floating base image, root at run time, no health check, a secret.

interface Instruction {
  keyword: string;
  args: string;
}

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function instructions(text: string): Instruction[] {
  const joined = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const space = line.search(/\s/);
      return { keyword: line.slice(0, space).toUpperCase(), args: line.slice(space + 1).trim() };
    });
}

function stages(all: Instruction[]): { from: string; name: string | null; body: Instruction[] }[] {
  const result: { from: string; name: string | null; body: Instruction[] }[] = [];
  for (const instruction of all) {
    if (instruction.keyword === 'FROM') {
      const [image, as, name] = instruction.args.split(/\s+/);
      result.push({ from: image!, name: as?.toUpperCase() === 'AS' ? name! : null, body: [] });
    } else result.at(-1)?.body.push(instruction);
  }
  return result;
}

const SECRET_WORDS = /(password|passwd|secret|token|api[_-]?key|private[_-]?key)\s*[=:]\s*\S/i;
const PINNED_IMAGE = /^[a-z0-9./-]+:\d+\.\d+(\.\d+)?(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?$/;
const dockerfile = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
const all = instructions(dockerfile);
const built = stages(all);
const runtime = built.at(-1)!;

describe('Dockerfile', () => {
  it('builds in one stage and runs from another, both on a pinned Node 20 slim image', () => {
    expect(built.length).toBeGreaterThanOrEqual(2);
    for (const stage of built) {
      expect(stage.from).toMatch(PINNED_IMAGE);
      expect(stage.from).toMatch(/^node:20\.\d+\.\d+-\w+-slim/);
    }
    // The final image takes only the build's output, never the toolchain.
    const fromBuild = runtime.body.filter((i) => i.keyword === 'COPY' && i.args.startsWith('--from='));
    expect(fromBuild.map((i) => i.args)).toEqual(expect.arrayContaining([expect.stringContaining('/dist'), expect.stringContaining('/node_modules')]));
    expect(runtime.body.some((i) => i.keyword === 'RUN' && /g\+\+|build-essential/.test(i.args))).toBe(false);
    const buildStage = built[0]!;
    expect(buildStage.body.some((i) => i.keyword === 'RUN' && i.args.includes('npm prune --omit=dev'))).toBe(true);
  });

  it('runs as a user that is not root', () => {
    const users = runtime.body.filter((i) => i.keyword === 'USER').map((i) => i.args);
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^(root|0)(:|$)/);
    // The USER line comes before what runs: ENTRYPOINT/CMD are after it.
    const lastUser = runtime.body.findLastIndex((i) => i.keyword === 'USER');
    expect(runtime.body.findIndex((i) => i.keyword === 'ENTRYPOINT')).toBeGreaterThan(lastUser);
  });

  it('has a health check against the admin port the command opens', () => {
    const health = runtime.body.find((i) => i.keyword === 'HEALTHCHECK');
    expect(health?.args).toMatch(/CMD .*127\.0\.0\.1:3129\/healthz/);
    const cmd = JSON.parse(runtime.body.find((i) => i.keyword === 'CMD')!.args) as string[];
    expect(cmd[cmd.indexOf('--admin-port') + 1]).toBe('3129');
  });

  it('holds no secret and copies none: keys, local data and the school CA stay out of the image', () => {
    for (const i of all) {
      if (i.keyword === 'ENV' || i.keyword === 'ARG' || i.keyword === 'LABEL') expect(`${i.keyword} ${i.args}`).not.toMatch(SECRET_WORDS);
    }
    const copied = all.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD');
    expect(copied.filter((i) => i.keyword === 'ADD')).toEqual([]);
    const ignored = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    for (const excluded of ['.git', 'node_modules', 'var', 'certs', 'dist']) expect(ignored).toContain(excluded);
    // Every COPY from the build context names something that exists and is not ignored.
    for (const copy of copied.filter((i) => !i.args.startsWith('--from='))) {
      const sources = copy.args.split(/\s+/).slice(0, -1);
      for (const source of sources) {
        expect(existsSync(path.join(REPO_ROOT, source)), source).toBe(true);
        expect(ignored).not.toContain(source);
      }
    }
  });

  it('starts the gateway listening on IPv6 and IPv4 with the transparent ports', () => {
    const cmd = JSON.parse(runtime.body.find((i) => i.keyword === 'CMD')!.args) as string[];
    expect(cmd[0]).toBe('serve');
    expect(cmd[cmd.indexOf('--host') + 1]).toBe('::');
    expect(cmd).toEqual(expect.arrayContaining(['--transparent-http', '--transparent-https']));
  });
});

describe('deploy/compose.yaml', () => {
  const compose = parse(readFileSync(path.join(REPO_ROOT, 'deploy/compose.yaml'), 'utf8'), { merge: true }) as {
    services: Record<
      string,
      {
        image?: string;
        profiles?: string[];
        network_mode?: string;
        command?: string[];
        environment?: Record<string, string>;
        user?: string;
        depends_on?: Record<string, unknown>;
      }
    >;
  };

  it('has the school gateway on the host network and the district collector on PostgreSQL', () => {
    const { gateway, collector, postgres } = compose.services;
    expect(gateway?.profiles).toEqual(['school']);
    expect(gateway?.network_mode).toBe('host');
    expect(gateway?.command?.[0]).toBe('serve');
    expect(collector?.profiles).toEqual(['district']);
    expect(collector?.command?.slice(0, 2)).toEqual(['central', 'serve']);
    const database = collector!.command![collector!.command!.indexOf('--database') + 1];
    expect(database).toMatch(/^postgres:\/\/[^:@]+@postgres:5432\//);
    expect(Object.keys(collector?.depends_on ?? {})).toContain('postgres');
    expect(postgres?.image).toMatch(/^postgres:1[5-9](\.\d+)?-/);
  });

  it('takes the database password from the environment, never from the file', () => {
    for (const service of Object.values(compose.services)) {
      for (const [name, value] of Object.entries(service.environment ?? {})) {
        if (/PASSWORD/.test(name)) expect(value).toMatch(/^\$\{[A-Z_]+:\?[^}]+\}$/);
      }
      expect(JSON.stringify(service.command ?? [])).not.toMatch(/postgres:\/\/[^@/]*:[^@/]*@/);
    }
  });
});

describe("the image's command, run as the container would (in a network namespace of its own)", () => {
  it('starts the gateway on IPv4 and IPv6, and the health check passes', { timeout: 180_000 }, async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'lachan-image-'));
    // The image's paths, mapped onto this checkout and a temporary data folder.
    const mapped = (word: string): string =>
      word
        .replace(/^\/opt\/lachan\/dist/, path.join(REPO_ROOT, 'dist'))
        .replace(/^\/opt\/lachan\/rules/, path.join(REPO_ROOT, 'rules'))
        .replace(/^\/var\/lib\/lachan/, path.join(work, 'var'))
        .replace(/^\/etc\/lachan\/certs/, path.join(work, 'certs'));
    const entrypoint = JSON.parse(runtime.body.find((i) => i.keyword === 'ENTRYPOINT')!.args) as string[];
    const cmd = JSON.parse(runtime.body.find((i) => i.keyword === 'CMD')!.args) as string[];
    const health = JSON.parse(/CMD (\[.*\])$/.exec(runtime.body.find((i) => i.keyword === 'HEALTHCHECK')!.args)![1]!) as string[];
    const node = (word: string): string => (word === 'node' ? process.execPath : word);
    const namespace = createNamespace('img');
    const gateway = namespace.spawn(node(entrypoint[0]!), [...entrypoint.slice(1), ...cmd].map(mapped));
    try {
      let output = '';
      await new Promise<void>((resolve, reject) => {
        gateway.stdout!.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          if (output.includes('"msg":"listening"')) resolve();
        });
        gateway.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
        gateway.once('exit', (code) => reject(new Error(`exited ${code}: ${output}`)));
      });
      const check = await namespace.run(node(health[0]!), health.slice(1));
      expect(check.code).toBe(0);
      for (const address of ['127.0.0.1', '[::1]']) {
        const pac = await namespace.run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${address}:3128/proxy.pac`]);
        expect(pac.stdout, address).toBe('200');
      }
    } finally {
      gateway.kill('SIGKILL');
      await new Promise((resolve) => (gateway.exitCode === null ? gateway.once('exit', resolve) : resolve(null)));
      namespace.destroy();
      rmSync(work, { recursive: true, force: true });
    }
  });
});
