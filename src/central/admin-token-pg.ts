/**
 * The admin token of collector processes sharing one PostgreSQL database
 * (docs/scaling.md, "One admin token"): its hash is in the database, so a token works on
 * every process whatever its `--data` holds. The first process to start makes it (or
 * adopts the token its `<data>/admin-token` already holds, as a district coming from
 * SQLite has) and writes it to that file; the database never holds the token itself, so
 * an operator on another machine takes it from that file or makes a new one with
 * `lachan central admin-token --rotate`, which every process obeys at once (NOTIFY).
 */
import pg from 'pg';
import { pgTypes, transaction, type PgClient, type PgPool } from '../storage/postgres.js';
import { type AdminTokenCheck, newAdminToken, readAdminTokenFile, writeAdminTokenFile } from './admin-token.js';
import { hashToken, sameHash } from './tokens.js';

/** The admin token's schema step (appended to PG_MIGRATIONS). */
export const ADMIN_TOKEN_PG_MIGRATIONS: readonly string[] = [
  `CREATE TABLE admin_token (
     id integer PRIMARY KEY CHECK (id = 1),
     token_hash bytea NOT NULL,
     created_at bigint NOT NULL
   );`,
];

/** Sent when the token changes; every serving process re-reads the hash. */
const CHANGED_CHANNEL = 'lachan_admin_token';
/** Re-read anyway this often, should a notification be lost with a dropped connection. */
const RELOAD_MS = 30_000;
const RECONNECT_MS = 5_000;

export interface AdminTokenLogger {
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
}

type Queryable = PgPool | PgClient;

async function storedHash(db: Queryable): Promise<Buffer | null> {
  const { rows } = await db.query<{ token_hash: Buffer }>('SELECT token_hash FROM admin_token WHERE id = 1');
  return rows[0]?.token_hash ?? null;
}

/**
 * The hash in force, made now if the database has none: from the token `dataDir` holds,
 * else a new one, written there. Of processes starting together one inserts; the others
 * read its hash (ON CONFLICT).
 */
export async function ensureAdminToken(pool: PgPool, dataDir: string): Promise<{ hash: Buffer; created: string | null }> {
  const found = await storedHash(pool);
  if (found !== null) return { hash: found, created: null };
  const held = readAdminTokenFile(dataDir);
  const candidate = held ?? newAdminToken();
  const inserted = await pool.query('INSERT INTO admin_token (id, token_hash, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING', [
    hashToken(candidate),
    Date.now(),
  ]);
  if (inserted.rowCount === 1) {
    if (held !== candidate) writeAdminTokenFile(dataDir, candidate);
    return { hash: hashToken(candidate), created: candidate };
  }
  return { hash: (await storedHash(pool))!, created: null };
}

/** Makes a new token the only one every process accepts; returns it (the one time it is seen). */
export async function rotateAdminToken(pool: PgPool): Promise<string> {
  const token = newAdminToken();
  await transaction(pool, async (client) => {
    await client.query(
      'INSERT INTO admin_token (id, token_hash, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash, created_at = excluded.created_at',
      [hashToken(token), Date.now()],
    );
    // Delivered at commit: no process hears of a token it cannot read yet.
    await client.query(`NOTIFY ${CHANGED_CHANNEL}`);
  });
  return token;
}

/** Whether `token` is the one in force. */
export async function isAdminTokenInForce(pool: PgPool, token: string): Promise<boolean> {
  const hash = await storedHash(pool);
  return hash !== null && sameHash(hashToken(token), hash);
}

export interface SharedAdminToken extends AdminTokenCheck {
  stop(): Promise<void>;
}

/**
 * The check a serving process makes: against the hash in memory (the request path does
 * no query), replaced when another process or the CLI rotates the token.
 */
export async function openSharedAdminToken(options: {
  readonly url: string;
  readonly pool: PgPool;
  readonly dataDir: string;
  readonly logger: AdminTokenLogger;
}): Promise<SharedAdminToken> {
  const { pool, logger } = options;
  let { hash } = await ensureAdminToken(pool, options.dataDir);
  const held = readAdminTokenFile(options.dataDir);
  if (held !== null && !sameHash(hashToken(held), hash))
    logger.warn(
      { file: `${options.dataDir}/admin-token` },
      'this admin-token file is not the token in force (the database holds it); lachan central admin-token',
    );

  let stopped = false;
  const reload = (): void => {
    storedHash(pool)
      .then((found) => {
        if (found !== null && !sameHash(found, hash)) {
          hash = found;
          logger.info({}, 'admin token changed');
        }
      })
      .catch((error: Error) => logger.warn({ err: error.message }, 'cannot read the admin token'));
  };
  const timer = setInterval(reload, RELOAD_MS);
  timer.unref();

  let listener: pg.Client | null = null;
  const listenLater = (): void => {
    if (!stopped) setTimeout(() => void listen().catch(listenLater), RECONNECT_MS).unref();
  };
  const listen = async (): Promise<void> => {
    if (stopped) return;
    const client = new pg.Client({ connectionString: options.url, types: pgTypes });
    client.on('notification', reload);
    client.once('error', (error: Error) => {
      logger.warn({ err: error.message }, 'lost the admin token notifications; reconnecting');
      client.on('error', () => undefined);
      void client.end().catch(() => undefined);
      if (listener === client) {
        listener = null;
        listenLater();
      }
    });
    await client.connect();
    await client.query(`LISTEN ${CHANGED_CHANNEL}`);
    listener = client;
    // A rotation between the first read and LISTEN would otherwise go unheard until the next reload.
    reload();
  };
  await listen();

  return {
    accepts: (token) => sameHash(hashToken(token), hash),
    async stop() {
      stopped = true;
      clearInterval(timer);
      await listener?.end().catch(() => undefined);
    },
  };
}
