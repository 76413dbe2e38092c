import type { Policy } from '../policy/engine.js';
import type { Decision } from '../policy/types.js';
import { isTunnel, type Flow } from './flow.js';

/**
 * Where later work attaches to the request path (time bands, exam mode, content
 * inspection, safeguarding signals), typed, each with a default that does what the
 * proxy does without it. Hooks run on the request path: they must be synchronous and
 * cheap, and do no I/O of their own beyond handing work off.
 */

export interface DecideInput {
  readonly flow: Flow;
  /** The rules in force when the flow was taken (a reload does not change a decision under way). */
  readonly policy: Policy;
  /** When the request was taken, in milliseconds since the epoch (the same as `flow.time`): time bands decide on it. */
  readonly time: number;
}

/** Decides a flow. */
export type DecideHook = (input: DecideInput) => Decision;

/** Told of every decision, blocked or allowed, right after it was made. */
export type SafeguardingSignalHook = (flow: Flow, decision: Decision) => void;

/** The origin's response head as the proxy got it. */
export interface OriginResponseHead {
  readonly status: number;
  /** Field names and values alternating, as received. */
  readonly rawHeaders: readonly (string | Buffer)[];
}

export type InspectionVerdict = { readonly action: 'pass' } | { readonly action: 'block'; readonly decision: Decision };

/** Reads one response body on its way to the client. */
export interface ResponseInspector {
  /** A body chunk, in order; null while undecided. */
  write(chunk: Buffer): InspectionVerdict | null;
  /** The body ended. */
  end(): InspectionVerdict;
}

/**
 * Given the flow and the origin's response head: null to pass the body untouched (the
 * common case, at no cost), or an inspector for this body.
 */
export type ResponseInspectorFactory = (flow: Flow, head: OriginResponseHead) => ResponseInspector | null;

export interface ProxyHooks {
  readonly decide: DecideHook;
  readonly onDecision: SafeguardingSignalHook;
  /** Null: no response is inspected. */
  readonly inspectResponse: ResponseInspectorFactory | null;
}

/** The rules alone: a tunnel on its host and port, a request on its host and path. */
export const decideByPolicy: DecideHook = ({ flow, policy, time }) => {
  const { target, client } = flow;
  return isTunnel(flow) ? policy.decideConnect(client.profile, target.host, target.port, time) : policy.decide(client.profile, target.host, target.pathAndQuery, time);
};

const noSignal: SafeguardingSignalHook = () => undefined;

export const DEFAULT_HOOKS: ProxyHooks = { decide: decideByPolicy, onDecision: noSignal, inspectResponse: null };

export function withDefaultHooks(hooks: Partial<ProxyHooks> | undefined): ProxyHooks {
  return hooks === undefined ? DEFAULT_HOOKS : { ...DEFAULT_HOOKS, ...hooks };
}
