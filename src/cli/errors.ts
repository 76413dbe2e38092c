import { formatProblem, type RulesLoadError } from '../rules/problems.js';

/** Exit codes of the command-line contract: 0 done, 1 a check failed, 2 bad usage or input. */
export const EXIT_OK = 0;
export const EXIT_CHECK_FAILED = 1;
export const EXIT_USAGE = 2;

/**
 * An error the user caused (bad option, unreadable file). main.ts prints its
 * message as one line on stderr, without a stack trace, and exits with `exitCode`.
 */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT_USAGE) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** How `--since` is written, for its help and its error. */
export const SINCE_HINT = 'khoảng thời gian tính lùi từ bây giờ (30m, 1h, 2d, 1w) hoặc một ngày ISO (2026-11-01)';

/** What a proxy worker sends the primary instead of printing its own error. */
export interface WorkerFailure {
  readonly type: 'fatal';
  readonly message: string;
  readonly exitCode: number;
}

/** Sends a worker's startup error to the primary; false when there is no primary to tell. */
export function reportFromWorker(message: string, exitCode: number): boolean {
  if (process.send === undefined || !process.connected) return false;
  process.send({ type: 'fatal', message, exitCode } satisfies WorkerFailure);
  return true;
}

const COMMANDER_MESSAGES: readonly (readonly [RegExp, string])[] = [
  [/^error: unknown option '([^']*)'/, "không có tuỳ chọn '$1'"],
  [/^error: option '([^']*)' argument missing/, "tuỳ chọn '$1' cần một giá trị"],
  [/^error: missing required argument '([^']*)'/, "thiếu tham số '$1'"],
  [/^error: required option '([^']*)' not specified/, "thiếu tuỳ chọn bắt buộc '$1'"],
  [/^error: unknown command '([^']*)'/, "không có lệnh '$1'"],
  [/^error: too many arguments(?: for '([^']*)')?/, 'thừa tham số'],
  [/^error: option '([^']*)' argument '([^']*)' is invalid/, "giá trị '$2' của tuỳ chọn '$1' không hợp lệ"],
];

/**
 * commander's usage error (English, several lines with a suggestion) as the one
 * Vietnamese line the CLI prints for bad usage, pointing to --help.
 */
export function usageErrorLine(text: string): string {
  const first = text.trim().split('\n', 1)[0] ?? '';
  const suggestion = /\(Did you mean (.+)\?\)/.exec(text);
  let message = first.replace(/^error: /, '');
  for (const [pattern, vietnamese] of COMMANDER_MESSAGES) {
    if (pattern.test(first)) {
      message = first.replace(pattern, vietnamese).replace(/\s*\(Did you mean .+\?\)$/, '');
      break;
    }
  }
  const hint = suggestion === null ? '' : ` (có phải ý là ${suggestion[1]}?)`;
  return `lỗi: ${message}${hint}; xem "lachan --help"\n`;
}

/**
 * Rules that do not load, in one line: the first problem as FILE:LINE (the line to
 * fix) and the command that lists them all.
 */
export function rulesRefused(error: RulesLoadError, rulesDir: string): CliError {
  const errors = error.problems.filter((p) => p.severity === 'error');
  const first = errors[0] === undefined ? error.message : formatProblem(errors[0]);
  const count = errors.length > 1 ? ` (${errors.length} lỗi, đây là lỗi đầu tiên)` : '';
  return new CliError(`quy tắc bị từ chối${count}: ${first}; xem tất cả: lachan rules lint --rules ${rulesDir}`);
}
