#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=33554432 node --no-memory-reducer --min-semi-space-size=16 --heap-growing-percent=300 --no-flush-bytecode
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Help, type Argument, type Option } from 'commander';
import { CliError, EXIT_USAGE, reportFromWorker, usageErrorLine } from './errors.js';
import { registerCheck } from './check.js';
import { registerRules } from './rules.js';
import { registerServe } from './serve-command.js';
import { registerCa } from './ca.js';
import { registerLogs } from './logs.js';
import { registerCentral } from './central.js';
import { registerReport } from './report.js';
import { registerLists } from './lists.js';
import { registerPrivacy } from './privacy.js';
import { registerAlerts } from './alerts.js';
import { registerClassroom } from './classroom.js';

/** package.json sits three folders above dist/src/cli/main.js, in the repository and in an installed package alike. */
const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** commander's help headings and notes, in the language of the descriptions. */
const HELP_TITLES: Readonly<Record<string, string>> = {
  'Usage:': 'Cách dùng:',
  'Options:': 'Tuỳ chọn:',
  'Commands:': 'Lệnh:',
  'Arguments:': 'Tham số:',
  'Global Options:': 'Tuỳ chọn chung:',
};
const withVietnameseNotes = (text: string): string => text.replace(/\(default: /, '(mặc định: ').replace(/\(choices: /, '(một trong: ');
const VIETNAMESE_HELP = {
  styleTitle: (title: string): string => HELP_TITLES[title] ?? title,
  optionDescription(this: Help, option: Option): string {
    return withVietnameseNotes(Help.prototype.optionDescription.call(this, option));
  },
  argumentDescription(this: Help, argument: Argument): string {
    return withVietnameseNotes(Help.prototype.argumentDescription.call(this, argument));
  },
};

const program = new Command();
program
  .name('lachan')
  .description('Lá chắn: bộ lọc nội dung (proxy) cho mạng trường học')
  .version(VERSION, '-V, --version', 'in phiên bản rồi thoát')
  .helpOption('-h, --help', 'xem hướng dẫn của lệnh')
  .helpCommand('help [lệnh]', 'xem hướng dẫn của một lệnh')
  .configureHelp(VIETNAMESE_HELP)
  .exitOverride()
  // commander's own usage errors, as one Vietnamese line naming where help is.
  .configureOutput({ outputError: (text, write) => write(usageErrorLine(text)) });

// The command modules define options and help only; each action imports what it runs, so
// `lachan --version` or `lachan rules lint` does not load the proxy, TLS, HTTP or mail code.
registerServe(program);
registerCheck(program);
registerRules(program);
registerCa(program);
registerLogs(program);
registerCentral(program);
registerReport(program);
registerLists(program);
registerPrivacy(program);
registerAlerts(program);
registerClassroom(program);

function fail(error: unknown): never {
  if (error instanceof CommanderError) {
    // commander already printed its message; help and version exit 0.
    process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE);
  }
  const message = error instanceof Error ? error.message : String(error);
  const exitCode = error instanceof CliError ? error.exitCode : EXIT_USAGE;
  // A proxy worker leaves the telling to the primary: one line, however many workers failed.
  if (cluster.isWorker && reportFromWorker(message, exitCode)) process.exit(exitCode);
  process.stderr.write(`lỗi: ${message}\n`);
  if (error instanceof CliError) process.exit(exitCode);
  if (process.env.LACHAN_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  process.exit(EXIT_USAGE);
}

program.parseAsync(process.argv).catch(fail);
