import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';

/**
 * A school network in three network namespaces, for the transparent-mode tests: a
 * student device, the gateway that routes it (where lachan and nftables run) and an
 * origin behind the gateway, each pair joined by a veth, over IPv4 and IPv6. Needs root,
 * `ip` (iproute2) and `nft` (nftables), as CI has.
 */
export interface SchoolNetwork {
  readonly client: string;
  readonly gateway: string;
  readonly origin: string;
  /** The gateway's interface on the students' side (what the nftables rules match). */
  readonly studentInterface: string;
  /** gatewayUpstream4: the gateway's address on the origins' side, whence the proxy dials. */
  readonly address: { client4: string; client6: string; gateway4: string; gateway6: string; gatewayUpstream4: string; origin4: string; origin6: string };
  /** Runs a command inside a namespace; resolves with its exit code and output, never rejects. */
  run(namespace: string, command: string, args: readonly string[], timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Starts a long-running process inside a namespace. */
  spawn(namespace: string, command: string, args: readonly string[]): ChildProcess;
  destroy(): void;
}

const ADDRESS = {
  client4: '10.77.1.2',
  client6: 'fd77:1::2',
  gateway4: '10.77.1.1',
  gateway6: 'fd77:1::1',
  gatewayOrigin4: '10.77.2.1',
  gatewayOrigin6: 'fd77:2::1',
  origin4: '10.77.2.2',
  origin6: 'fd77:2::2',
};

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function inside(namespace: string, ...args: string[]): void {
  ip('netns', 'exec', namespace, ...args);
}

/**
 * Namespaces left by a run killed before its cleanup: the ones asked for, and any of
 * these tests' whose process (the tag's pid) is gone.
 */
function removeStale(names: readonly string[]): void {
  const existing = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.split(' ')[0]!);
  for (const name of existing) {
    const owner = /^lc(\d+)-(cli|gw|org|img)$/.exec(name);
    const orphan = owner !== null && !isAlive(Number(owner[1]));
    if (names.includes(name) || orphan) ip('netns', 'del', name);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function runInside(namespace: string, command: string, args: readonly string[], timeoutMs = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', namespace, command, ...args], { encoding: 'utf8', timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

function spawnInside(namespace: string, command: string, args: readonly string[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', namespace, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** One empty namespace with loopback up: a machine of its own, whose ports nothing else holds. */
export interface Namespace {
  readonly name: string;
  run(command: string, args: readonly string[], timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  spawn(command: string, args: readonly string[]): ChildProcess;
  destroy(): void;
}

export function createNamespace(suffix: string): Namespace {
  const name = `lc${process.pid}-${suffix}`;
  removeStale([name]);
  ip('netns', 'add', name);
  inside(name, 'ip', 'link', 'set', 'lo', 'up');
  return {
    name,
    run: (command, args, timeoutMs) => runInside(name, command, args, timeoutMs),
    spawn: (command, args) => spawnInside(name, command, args),
    destroy: () => ip('netns', 'del', name),
  };
}

export function createSchoolNetwork(): SchoolNetwork {
  // Interface names have at most 15 characters (lc + a pid of up to 7 digits + 1); the pid keeps parallel runs apart.
  const tag = `lc${process.pid}`;
  const client = `${tag}-cli`;
  const gateway = `${tag}-gw`;
  const origin = `${tag}-org`;
  const studentInterface = `${tag}s`;
  const network: SchoolNetwork = {
    client,
    gateway,
    origin,
    studentInterface,
    address: {
      client4: ADDRESS.client4,
      client6: ADDRESS.client6,
      gateway4: ADDRESS.gateway4,
      gateway6: ADDRESS.gateway6,
      gatewayUpstream4: ADDRESS.gatewayOrigin4,
      origin4: ADDRESS.origin4,
      origin6: ADDRESS.origin6,
    },
    run: runInside,
    spawn: spawnInside,
    destroy() {
      for (const name of [client, gateway, origin]) {
        try {
          ip('netns', 'del', name);
        } catch {
          // already gone
        }
      }
    },
  };
  removeStale([client, gateway, origin]);
  try {
    for (const name of [client, gateway, origin]) {
      ip('netns', 'add', name);
      inside(name, 'ip', 'link', 'set', 'lo', 'up');
    }
    ip('link', 'add', `${tag}c`, 'netns', client, 'type', 'veth', 'peer', 'name', studentInterface, 'netns', gateway);
    ip('link', 'add', `${tag}o`, 'netns', origin, 'type', 'veth', 'peer', 'name', `${tag}u`, 'netns', gateway);
    // nodad: the IPv6 addresses are usable at once, not after duplicate detection.
    const links: [string, string, string, string][] = [
      [client, `${tag}c`, `${ADDRESS.client4}/24`, `${ADDRESS.client6}/64`],
      [gateway, studentInterface, `${ADDRESS.gateway4}/24`, `${ADDRESS.gateway6}/64`],
      [gateway, `${tag}u`, `${ADDRESS.gatewayOrigin4}/24`, `${ADDRESS.gatewayOrigin6}/64`],
      [origin, `${tag}o`, `${ADDRESS.origin4}/24`, `${ADDRESS.origin6}/64`],
    ];
    for (const [name, link, v4, v6] of links) {
      inside(name, 'ip', 'addr', 'add', v4, 'dev', link);
      inside(name, 'ip', '-6', 'addr', 'add', v6, 'dev', link, 'nodad');
      inside(name, 'ip', 'link', 'set', link, 'up');
    }
    inside(client, 'ip', 'route', 'add', 'default', 'via', ADDRESS.gateway4);
    inside(client, 'ip', '-6', 'route', 'add', 'default', 'via', ADDRESS.gateway6);
    inside(origin, 'ip', 'route', 'add', 'default', 'via', ADDRESS.gatewayOrigin4);
    inside(origin, 'ip', '-6', 'route', 'add', 'default', 'via', ADDRESS.gatewayOrigin6);
    inside(gateway, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1');
    inside(gateway, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.forwarding=1');
  } catch (error) {
    network.destroy();
    throw error;
  }
  return network;
}
