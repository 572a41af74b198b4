// `npm run diagrams`: writes docs/machines.md from the machine definitions (never by hand).
// The list of machines is scripts/machines-list.mjs, shared with the staleness test.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderMachinesDocument } from '@parley/core/internal';
import { machines } from './machines-list.mjs';

const target = fileURLToPath(new URL('../docs/machines.md', import.meta.url));
writeFileSync(target, renderMachinesDocument(machines));
console.log(`wrote ${target} (${machines.length} machines)`);
