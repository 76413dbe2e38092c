import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CLI, REPO_ROOT } from './rules.js';

/** Module hooks, run in node's loader thread: every ES module (and CommonJS entry) the CLI imports, one URL a line. */
const HOOKS = `import { appendFileSync } from 'node:fs';
let out;
export function initialize(data) { out = data.out; }
export async function load(url, context, next) {
  if (url.startsWith('file:')) appendFileSync(out, url + '\\n');
  return next(url, context);
}
`;

/** Preloaded with --import: registers the hooks, and at exit adds the CommonJS modules required from CommonJS, which Node 20's hooks do not see. */
const PRELOAD = `import { register, createRequire } from 'node:module';
import { appendFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const out = process.env.LACHAN_MODULE_RECORD;
register(new URL('./hooks.mjs', import.meta.url), { data: { out } });
const require = createRequire(import.meta.url);
process.on('exit', () => appendFileSync(out, Object.keys(require.cache).map((file) => pathToFileURL(file).href + '\\n').join('')));
`;

export interface ModulesLoaded {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** npm packages loaded, sorted: `yaml`, `@scope/name`. */
  readonly packages: readonly string[];
  /** lachan's own modules loaded, relative to dist/: `src/cli/main.js`. */
  readonly modules: readonly string[];
}

/** Runs the built CLI to completion, as `lachan` in harness/rules.ts does, recording every module the process loaded. */
export function lachanLoading(args: readonly string[]): ModulesLoaded {
  const dir = mkdtempSync(path.join(tmpdir(), 'lachan-modules-'));
  try {
    writeFileSync(path.join(dir, 'hooks.mjs'), HOOKS);
    writeFileSync(path.join(dir, 'preload.mjs'), PRELOAD);
    const out = path.join(dir, 'loaded.txt');
    writeFileSync(out, '');
    const result = spawnSync(process.execPath, ['--import', pathToFileURL(path.join(dir, 'preload.mjs')).href, CLI, ...args], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, LACHAN_MODULE_RECORD: out },
    });
    const files = [
      ...new Set(
        readFileSync(out, 'utf8')
          .split('\n')
          .filter((line) => line !== ''),
      ),
    ].map((url) => fileURLToPath(url));
    const packages = new Set<string>();
    for (const file of files) {
      const name = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)?.[1];
      if (name !== undefined) packages.add(name);
    }
    const dist = path.join(REPO_ROOT, 'dist');
    const modules = files.filter((file) => file.startsWith(`${dist}/`)).map((file) => path.relative(dist, file));
    return { code: result.status, stdout: result.stdout, stderr: result.stderr, packages: [...packages].sort(), modules: modules.sort() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
