import { ContentInspection } from '../content/inspector.js';
import type { ContentVerdict } from '../content/profile.js';
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

/**
 * Told of the search terms of an allowed request to a search engine, with the content
 * verdict on them (null: under the limit, or the profile is not inspected). Null: the
 * proxy reads search terms only where a profile's content_limit asks for it.
 */
export type SearchSignalHook = (flow: Flow, query: string, verdict: ContentVerdict | null) => void;

/** Told of a response blocked by content inspection. */
export type ContentSignalHook = (flow: Flow, verdict: ContentVerdict) => void;

export interface InspectInput {
  readonly flow: Flow;
  /** The rules the request was decided with: a reload under way does not change how its body is read. */
  readonly policy: Policy;
}

/**
 * Content inspection for one allowed request (docs/contract.md §8): null to stream the
 * body untouched at no cost (the profile has no content_limit), or the inspection that
 * picks an inspector from the response head (`begin`: null for images, downloads, …).
 */
export type ResponseInspectorFactory = (input: InspectInput) => ContentInspection | null;

export interface ProxyHooks {
  readonly decide: DecideHook;
  readonly onDecision: SafeguardingSignalHook;
  readonly onSearch: SearchSignalHook | null;
  readonly onContentBlock: ContentSignalHook;
  /** Null: no response is inspected. */
  readonly inspectResponse: ResponseInspectorFactory | null;
}

/** The rules alone: a tunnel on its host and port, a request on its host and path. */
export const decideByPolicy: DecideHook = ({ flow, policy, time }) => {
  const { target, client } = flow;
  return isTunnel(flow)
    ? policy.decideConnect(client.profile, target.host, target.port, time)
    : policy.decide(client.profile, target.host, target.pathAndQuery, time);
};

/** The profile's content_limit, if it has one (one ContentInspection per profile, shared: ContentInspection.for). */
export const inspectByContentLimit: ResponseInspectorFactory = ({ flow, policy }) => ContentInspection.for(policy, flow.client.profile);

const noSignal = (): void => undefined;

export const DEFAULT_HOOKS: ProxyHooks = {
  decide: decideByPolicy,
  onDecision: noSignal,
  onSearch: null,
  onContentBlock: noSignal,
  inspectResponse: inspectByContentLimit,
};

export function withDefaultHooks(hooks: Partial<ProxyHooks> | undefined): ProxyHooks {
  return hooks === undefined ? DEFAULT_HOOKS : { ...DEFAULT_HOOKS, ...hooks };
}
