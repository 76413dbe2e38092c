/** Defaults the CLI names in its help, apart from the CA code so that help and light commands need no node-forge. */
export const DEFAULT_CERTS_DIR = 'certs';
export const DEFAULT_SCHOOL_NAME = 'Lá chắn';
