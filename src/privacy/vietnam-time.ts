/** `DD/MM/YYYY HH:MM` in Vietnam time (UTC+7, no daylight saving), as Vietnamese documents write it. */
export function formatVietnamTime(ms: number): string {
  const iso = new Date(ms + 7 * 3_600_000).toISOString();
  return `${iso.slice(8, 10)}/${iso.slice(5, 7)}/${iso.slice(0, 4)} ${iso.slice(11, 16)}`;
}
