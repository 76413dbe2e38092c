/**
 * Every time district staff read (pages, CSV, audit) is Vietnam time, written the way
 * Vietnamese forms write it: dd/mm/yyyy HH:mm. Node 20 carries full ICU, so Intl knows
 * Asia/Ho_Chi_Minh; the dashboard's script formats the same way in the browser.
 */
export const VN_TIME_ZONE = 'Asia/Ho_Chi_Minh';

const MINUTES = new Intl.DateTimeFormat('en-GB', {
  timeZone: VN_TIME_ZONE,
  day: '2-digit',
  month: '2-digit',
  year: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
});
const SECONDS = new Intl.DateTimeFormat('en-GB', {
  timeZone: VN_TIME_ZONE,
  day: '2-digit',
  month: '2-digit',
  year: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
});

/** `04/12/2026 20:45` */
export function vnDateTime(ms: number): string {
  return MINUTES.format(ms).replace(',', '');
}

/** `04/12/2026 20:45:07`, for the CSV, where events a second apart must stay apart. */
export function vnDateTimeSeconds(ms: number): string {
  return SECONDS.format(ms).replace(',', '');
}
