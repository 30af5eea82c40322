import { fileURLToPath } from 'node:url';

/** The repository root, from test/dist/harness/ (where this file is compiled to). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
