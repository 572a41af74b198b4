// `npm pack` / `npm publish` of a package runs this (its `prepack` script) in the package's folder:
// the tarball gets the repository's one LICENSE, copied next to the package's README (the copies
// are gitignored, so the license text lives in one place).
import { copyFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

copyFileSync(fileURLToPath(new URL('../LICENSE', import.meta.url)), 'LICENSE');
