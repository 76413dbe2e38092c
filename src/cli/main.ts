#!/usr/bin/env -S node --no-memory-reducer --min-semi-space-size=16 --heap-growing-percent=300 --no-flush-bytecode
import { Command, CommanderError } from 'commander';
import { CliError, EXIT_USAGE } from './errors.js';
import { registerCheck } from './check.js';
import { registerRules } from './rules.js';
import { registerServe } from './serve.js';
import { registerCa } from './ca.js';
import { registerLogs } from './logs.js';
import { registerCentral } from './central.js';
import { registerReport } from './report.js';
import { registerLists } from './lists.js';

const program = new Command();
program
  .name('lachan')
  .description('Lá chắn: content-filtering forward proxy for school networks')
  .showHelpAfterError()
  .exitOverride()
  .configureOutput({ outputError: (text, write) => write(text) });

registerServe(program);
registerCheck(program);
registerRules(program);
registerCa(program);
registerLogs(program);
registerCentral(program);
registerReport(program);
registerLists(program);

function fail(error: unknown): never {
  if (error instanceof CommanderError) {
    // commander already printed its message; help and version exit 0.
    process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE);
  }
  if (error instanceof CliError) {
    process.stderr.write(`lachan: ${error.message}\n`);
    process.exit(error.exitCode);
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`lachan: ${message}\n`);
  if (process.env.LACHAN_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  process.exit(EXIT_USAGE);
}

program.parseAsync(process.argv).catch(fail);
