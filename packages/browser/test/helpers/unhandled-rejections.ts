import { afterAll, beforeAll } from 'vitest';

/**
 * Collects the promise rejections nobody handled while this test file runs, so a test can
 * assert there were none (vitest alone reports them only at the end of the run, against no
 * test in particular). Take them with `collected.splice(0)`.
 */
export function collectUnhandledRejections(): unknown[] {
  const collected: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    collected.push(reason);
  };
  beforeAll(() => {
    process.on('unhandledRejection', onUnhandled);
  });
  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
  });
  return collected;
}
