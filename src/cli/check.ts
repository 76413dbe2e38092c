import type { Command } from 'commander';

// Placeholder until this command group is built; it registers nothing yet.
export function registerCheck(_program: Command): void {}
