/**
 * UT1 publishes each category as `NAME.tar.gz` (a folder `NAME/` holding `domains`,
 * `urls`, `expressions`, `usage`). A subscription with `format: ut1` may name such an
 * archive: this reads the `domains` and `urls` files out of it (POSIX/GNU tar, no
 * links or sparse files needed), and leaves `expressions` (regexes) aside as
 * `lachan rules import` does.
 */
import { gunzipSync } from 'node:zlib';

const BLOCK = 512;
const WANTED = new Set(['domains', 'urls']);

export function isGzip(body: Buffer): boolean {
  return body.length > 2 && body[0] === 0x1f && body[1] === 0x8b;
}

/** The text of the archive's `domains` and `urls` files, one after the other; null when it holds neither. */
export function ut1ArchiveText(archive: Buffer, maxBytes: number): string | null {
  const tar = isGzip(archive) ? gunzipSync(archive, { maxOutputLength: maxBytes }) : archive;
  const parts: string[] = [];
  let offset = 0;
  let longName: string | null = null;
  while (offset + BLOCK <= tar.length) {
    const header = tar.subarray(offset, offset + BLOCK);
    if (header.every((byte) => byte === 0)) break;
    const name = longName ?? field(header, 0, 100);
    longName = null;
    const prefix = field(header, 345, 155);
    const size = parseInt(field(header, 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(header[156]!);
    if (!Number.isFinite(size) || size < 0) return null;
    const start = offset + BLOCK;
    const content = tar.subarray(start, start + size);
    if (type === 'L') longName = content.toString('utf8').replace(/\0.*$/s, '');
    else if (type === '0' || type === '\0') {
      const path = prefix === '' ? name : `${prefix}/${name}`;
      const base = path.split('/').pop() ?? '';
      if (WANTED.has(base)) parts.push(content.toString('utf8'));
    }
    offset = start + Math.ceil(size / BLOCK) * BLOCK;
  }
  if (parts.length === 0) return null;
  return parts.map((text) => (text.endsWith('\n') ? text : `${text}\n`)).join('');
}

function field(header: Buffer, start: number, length: number): string {
  const bytes = header.subarray(start, start + length);
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end === -1 ? length : end).toString('utf8');
}
