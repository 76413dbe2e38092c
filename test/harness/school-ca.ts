import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CLI } from './rules.js';

export interface InterceptionFiles {
  /** The school CA's certificate, for a client that trusts it (curl --cacert). */
  readonly schoolCa: string;
  /** The test origins' CA, for a client that must see the origin itself. */
  readonly originCa: string;
  /** What startGateway needs to intercept: `--certs`, and the origins' CA trusted as public CAs are (NODE_EXTRA_CA_CERTS). */
  readonly gateway: { readonly args: readonly string[]; readonly env: NodeJS.ProcessEnv };
}

/** A school CA made by the real CLI (`lachan ca init`) in a fresh folder, for a gateway that intercepts HTTPS to the test origins. */
export function interceptionFiles(schoolName: string, originCaPem: string): InterceptionFiles {
  const work = mkdtempSync(path.join(tmpdir(), 'lachan-school-ca-'));
  const certs = path.join(work, 'certs');
  execFileSync(process.execPath, [CLI, 'ca', 'init', '--certs', certs, '--name', schoolName], { stdio: 'ignore' });
  const originCa = path.join(work, 'origin-ca.pem');
  writeFileSync(originCa, originCaPem);
  return { schoolCa: path.join(certs, 'ca.crt'), originCa, gateway: { args: ['--certs', certs], env: { NODE_EXTRA_CA_CERTS: originCa } } };
}
