/**
 * Counters for Prometheus `/metrics`, kept as plain numbers and maps so the
 * request path only increments. Rendered in the text exposition format.
 */

const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface MetricsSnapshot {
  requests: number;
  connects: number;
  upstreamErrors: Record<string, number>;
  blocks: Record<string, number>;
  latencyBuckets: number[];
  latencyCount: number;
  latencySum: number;
  cacheHits: number;
  cacheMisses: number;
  reloads: number;
  reloadFailures: number;
  openConnections: number;
  /** Client connection limits met, by `reason\0outcome\0client` (client: pseudonymous device id). */
  connectionLimits: Record<string, number>;
  /** Connections held by the client holding the most (largest over workers). */
  largestClientConnections: number;
}

/** Clients named in the limit counter; beyond, hits count under `other` (a flood of addresses cannot grow /metrics without bound). */
const NAMED_CLIENTS_LIMIT = 256;

export class ProxyMetrics {
  requests = 0;
  connects = 0;
  reloads = 0;
  reloadFailures = 0;
  openConnections = 0;
  /** Set by the proxy: connections of the client holding the most. */
  largestClient: () => number = () => 0;
  private readonly connectionLimits = new Map<string, number>();
  private readonly upstreamErrors = new Map<string, number>();
  private readonly blocks = new Map<string, number>();
  private readonly latencyBuckets = new Array<number>(LATENCY_BUCKETS_S.length).fill(0);
  private latencyCount = 0;
  private latencySum = 0;

  block(category: string | null, profile: string): void {
    const key = `${category ?? 'none'}\u0000${profile}`;
    this.blocks.set(key, (this.blocks.get(key) ?? 0) + 1);
  }

  connectionLimit(client: string, reason: string, outcome: string): void {
    let key = `${reason}\u0000${outcome}\u0000${client}`;
    if (!this.connectionLimits.has(key) && this.connectionLimits.size >= NAMED_CLIENTS_LIMIT) key = `${reason}\u0000${outcome}\u0000other`;
    this.connectionLimits.set(key, (this.connectionLimits.get(key) ?? 0) + 1);
  }

  upstreamError(kind: string): void {
    this.upstreamErrors.set(kind, (this.upstreamErrors.get(kind) ?? 0) + 1);
  }

  observeLatency(seconds: number): void {
    this.latencyCount++;
    this.latencySum += seconds;
    for (let i = 0; i < LATENCY_BUCKETS_S.length; i++) {
      if (seconds <= LATENCY_BUCKETS_S[i]!) {
        this.latencyBuckets[i]!++;
        break;
      }
    }
  }

  snapshot(cache: { hits: number; misses: number }): MetricsSnapshot {
    return {
      requests: this.requests,
      connects: this.connects,
      upstreamErrors: Object.fromEntries(this.upstreamErrors),
      blocks: Object.fromEntries(this.blocks),
      latencyBuckets: [...this.latencyBuckets],
      latencyCount: this.latencyCount,
      latencySum: this.latencySum,
      cacheHits: cache.hits,
      cacheMisses: cache.misses,
      reloads: this.reloads,
      reloadFailures: this.reloadFailures,
      openConnections: this.openConnections,
      connectionLimits: Object.fromEntries(this.connectionLimits),
      largestClientConnections: this.largestClient(),
    };
  }
}

/** Sums the snapshots of several workers. */
export function mergeSnapshots(snapshots: readonly MetricsSnapshot[]): MetricsSnapshot {
  const total: MetricsSnapshot = {
    requests: 0,
    connects: 0,
    upstreamErrors: {},
    blocks: {},
    latencyBuckets: new Array<number>(LATENCY_BUCKETS_S.length).fill(0),
    latencyCount: 0,
    latencySum: 0,
    cacheHits: 0,
    cacheMisses: 0,
    reloads: 0,
    reloadFailures: 0,
    openConnections: 0,
    connectionLimits: {},
    largestClientConnections: 0,
  };
  for (const s of snapshots) {
    total.requests += s.requests;
    total.connects += s.connects;
    total.latencyCount += s.latencyCount;
    total.latencySum += s.latencySum;
    total.cacheHits += s.cacheHits;
    total.cacheMisses += s.cacheMisses;
    total.reloads = Math.max(total.reloads, s.reloads);
    total.reloadFailures = Math.max(total.reloadFailures, s.reloadFailures);
    total.openConnections += s.openConnections;
    total.largestClientConnections = Math.max(total.largestClientConnections, s.largestClientConnections);
    for (const [k, v] of Object.entries(s.connectionLimits)) total.connectionLimits[k] = (total.connectionLimits[k] ?? 0) + v;
    s.latencyBuckets.forEach((v, i) => {
      total.latencyBuckets[i]! += v;
    });
    for (const [k, v] of Object.entries(s.blocks)) total.blocks[k] = (total.blocks[k] ?? 0) + v;
    for (const [k, v] of Object.entries(s.upstreamErrors)) total.upstreamErrors[k] = (total.upstreamErrors[k] ?? 0) + v;
  }
  return total;
}

function label(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

export function renderMetrics(s: MetricsSnapshot, extra: readonly string[] = []): string {
  const lines: string[] = [];
  lines.push(
    '# HELP lachan_requests_total HTTP requests received (absolute form).',
    '# TYPE lachan_requests_total counter',
    `lachan_requests_total ${s.requests}`,
  );
  lines.push('# HELP lachan_connects_total CONNECT tunnels requested.', '# TYPE lachan_connects_total counter', `lachan_connects_total ${s.connects}`);
  lines.push('# HELP lachan_blocks_total Blocked requests by category and profile.', '# TYPE lachan_blocks_total counter');
  for (const [key, value] of Object.entries(s.blocks)) {
    const [category, profile] = key.split('\u0000');
    lines.push(`lachan_blocks_total{category="${label(category!)}",profile="${label(profile!)}"} ${value}`);
  }
  lines.push('# HELP lachan_upstream_errors_total Failures reaching origins, by kind.', '# TYPE lachan_upstream_errors_total counter');
  for (const [kind, value] of Object.entries(s.upstreamErrors)) lines.push(`lachan_upstream_errors_total{kind="${label(kind)}"} ${value}`);
  const lookups = s.cacheHits + s.cacheMisses;
  lines.push(
    '# HELP lachan_decision_cache_hit_ratio Share of decisions answered from the cache.',
    '# TYPE lachan_decision_cache_hit_ratio gauge',
    `lachan_decision_cache_hit_ratio ${lookups === 0 ? 0 : (s.cacheHits / lookups).toFixed(4)}`,
  );
  lines.push('# HELP lachan_request_duration_seconds Time to response headers for forwarded requests.', '# TYPE lachan_request_duration_seconds histogram');
  let cumulative = 0;
  LATENCY_BUCKETS_S.forEach((bound, i) => {
    cumulative += s.latencyBuckets[i]!;
    lines.push(`lachan_request_duration_seconds_bucket{le="${bound}"} ${cumulative}`);
  });
  lines.push(
    `lachan_request_duration_seconds_bucket{le="+Inf"} ${s.latencyCount}`,
    `lachan_request_duration_seconds_sum ${s.latencySum.toFixed(6)}`,
    `lachan_request_duration_seconds_count ${s.latencyCount}`,
  );
  lines.push(
    '# TYPE lachan_rule_reloads_total counter',
    `lachan_rule_reloads_total ${s.reloads}`,
    '# TYPE lachan_rule_reload_failures_total counter',
    `lachan_rule_reload_failures_total ${s.reloadFailures}`,
  );
  lines.push('# TYPE lachan_open_connections gauge', `lachan_open_connections ${s.openConnections}`);
  lines.push(
    '# HELP lachan_connection_limit_total New client connections that met a limit, by reason (per-client, capacity), outcome (an idle connection reclaimed, or the new one refused) and client (pseudonymous device id: the client at its limit, or holding the most).',
    '# TYPE lachan_connection_limit_total counter',
  );
  for (const [key, value] of Object.entries(s.connectionLimits)) {
    const [reason, outcome, client] = key.split('\u0000');
    lines.push(`lachan_connection_limit_total{reason="${label(reason!)}",outcome="${label(outcome!)}",client="${label(client!)}"} ${value}`);
  }
  lines.push(
    '# HELP lachan_client_connections_max Connections held by the client holding the most (largest in one worker).',
    '# TYPE lachan_client_connections_max gauge',
    `lachan_client_connections_max ${s.largestClientConnections}`,
  );
  lines.push(...extra);
  return `${lines.join('\n')}\n`;
}
