// With LACHAN_TEST_STORE=postgres: one PostgreSQL server for the run's collector databases (collector-store.ts).
import { PG_URL_ENV } from './collector-store.js';
import { startPostgres, type PostgresServer } from './postgres.js';

let server: PostgresServer | null = null;

export async function setup(): Promise<void> {
  if (process.env.LACHAN_TEST_STORE !== 'postgres') return;
  server = await startPostgres();
  process.env[PG_URL_ENV] = server.url;
}

export async function teardown(): Promise<void> {
  await server?.stop();
}
