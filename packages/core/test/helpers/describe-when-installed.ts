import { describe, it } from 'vitest';

/**
 * `describe` for a suite that needs a program from outside npm (coturn, Chromium). `missing` says
 * what is absent and how to install it, or is null when it is there. Without it the suite is
 * reported as skipped, the hint in its name and in a warning; with `CI` set it fails instead
 * (.ci/run installs the program, so its absence means the feature went untested).
 */
export function describeWhenInstalled(name: string, program: string, missing: string | null, body: () => void): void {
  if (missing === null) {
    describe(name, body);
  } else if (process.env['CI']) {
    describe(name, () => {
      it(`needs ${program}`, () => {
        throw new Error(`${name}: ${missing} (CI is set, so these tests fail instead of skipping)`);
      });
    });
  } else {
    // The hint in the suite name shows in verbose reports; the warning shows in every report.
    console.warn(`skipping "${name}": ${missing}`);
    describe.skip(`${name} [skipped: ${missing}]`, body);
  }
}
