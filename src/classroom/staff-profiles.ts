/** The staff profile when the school names none (docs/contract.md §3: `giao-vien`, staff); apart from the classroom so that `lachan --help` loads none of it. */
export const DEFAULT_STAFF_PROFILES = 'giao-vien';
