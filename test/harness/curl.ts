import { execFile } from 'node:child_process';
import { connect } from 'node:net';

export interface CurlResult {
  /** curl's exit code (0 on any HTTP status). */
  readonly code: number;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly stderr: string;
}

export interface CurlOptions {
  /** Source address for the client (`--interface`), e.g. 127.0.0.2. */
  readonly from?: string;
  /** `user:password` for Proxy-Authorization: Basic. */
  readonly proxyUser?: string;
  readonly caPem?: string;
  readonly args?: readonly string[];
  readonly maxTimeS?: number;
  /** Bytes for curl's stdin (`--data-binary @-`). */
  readonly stdin?: Buffer | string;
}

/**
 * The real curl through the proxy at 127.0.0.1:`proxyPort` (`-x`); no proxy when `proxyPort` is null.
 * An array instead of options is more curl arguments.
 */
export function curl(proxyPort: number | null, url: string, optionsOrArgs: CurlOptions | readonly string[] = {}): Promise<CurlResult> {
  const options: CurlOptions = isArgs(optionsOrArgs) ? { args: optionsOrArgs } : optionsOrArgs;
  const args = ['-s', '-S', '-i', '--noproxy', '', '--max-time', String(options.maxTimeS ?? 20)];
  if (proxyPort !== null) args.push('-x', `http://127.0.0.1:${proxyPort}`);
  if (options.from !== undefined) args.push('--interface', options.from);
  if (options.proxyUser !== undefined) args.push('--proxy-user', options.proxyUser);
  if (options.caPem !== undefined) args.push('--cacert', options.caPem);
  args.push(...(options.args ?? []), url);
  return new Promise((resolve) => {
    const child = execFile(
      'curl',
      args,
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, env: { ...process.env, http_proxy: '', https_proxy: '', HTTP_PROXY: '', HTTPS_PROXY: '' } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 1;
        resolve({ code, stderr, ...parseCurlOutput(stdout) });
      },
    );
    child.stdin?.end(options.stdin);
  });
}

/** The last response of `curl -i` output (a CONNECT's `200 Connection Established` comes first). */
export function parseCurlOutput(raw: string): { status: number; headers: Record<string, string>; body: string } {
  let rest = raw;
  let status = 0;
  let headers: Record<string, string> = {};
  for (;;) {
    const match = /^HTTP\/[\d.]+ (\d{3})[^\r\n]*\r?\n/.exec(rest);
    if (match === null) break;
    const end = rest.indexOf('\r\n\r\n');
    const headText = end === -1 ? rest : rest.slice(0, end);
    status = Number(match[1]);
    headers = {};
    for (const line of headText.split('\r\n').slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    rest = end === -1 ? '' : rest.slice(end + 4);
  }
  return { status, headers, body: rest };
}

export interface RawResult {
  /** Everything the server sent. */
  readonly text: string;
  /** True when the server closed the connection (false: we gave up waiting). */
  readonly closed: boolean;
}

/**
 * Writes raw bytes to the proxy and collects the answer until the server closes the
 * connection or `waitMs` passes: for requests curl will not send (garbage, smuggling shapes).
 */
export function rawExchange(port: number, payload: string | Buffer, waitMs = 5_000): Promise<RawResult> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(payload));
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('utf8'), closed });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
  });
}

/** Status code of the first response in raw text, or 0. */
export function rawStatus(text: string): number {
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return match === null ? 0 : Number(match[1]);
}

function isArgs(value: CurlOptions | readonly string[]): value is readonly string[] {
  return Array.isArray(value);
}
