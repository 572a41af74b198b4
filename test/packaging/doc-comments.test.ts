import { describe, expect, it } from 'vitest';
import { undocumentedExports } from './undocumented-exports.js';

// `npx vitest run --project packaging doc-comments` lists every undocumented export at once.
describe('the public API', () => {
  it('has a doc comment on every exported declaration of every entry point', () => {
    const missing = undocumentedExports().map((u) => `${u.entryPoint}: ${u.name} (${u.declaredAt})`);
    expect(missing, `exports without a doc comment:\n${missing.join('\n')}`).toEqual([]);
  });
});
