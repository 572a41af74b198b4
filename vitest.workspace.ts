import type { TestProjectInlineConfiguration } from 'vitest/config';

/** One vitest project per package or app; vitest.config.ts imports this list. */
export const projects: TestProjectInlineConfiguration[] = [
  {
    test: {
      name: 'core',
      root: 'packages/core',
      include: ['test/**/*.test.ts'],
      environment: 'node',
    },
  },
  {
    test: {
      name: 'browser',
      root: 'packages/browser',
      include: ['test/**/*.test.ts'],
      exclude: ['test/interop/**'],
      environment: 'node',
      // Real libwebrtc peers, coturn and signaling servers: seconds, not milliseconds.
      testTimeout: 30_000,
      hookTimeout: 30_000,
    },
  },
  {
    test: {
      // The same call between every pair of engines (issue 16): Chromium and Firefox pages, and
      // libwebrtc, werift and libdatachannel in Node. One pair at a time; each takes seconds.
      name: 'interop',
      root: 'packages/browser',
      include: ['test/interop/**/*.test.ts'],
      environment: 'node',
      testTimeout: 90_000,
      hookTimeout: 120_000,
    },
  },
  {
    test: {
      name: 'signaling-ws',
      root: 'packages/signaling-ws',
      include: ['test/**/*.test.ts'],
      environment: 'node',
      testTimeout: 20_000,
    },
  },
  {
    test: {
      name: 'demo',
      root: 'apps/demo',
      include: ['test/**/*.test.ts'],
      environment: 'node',
      // Real Chromium pages calling each other through a real signaling server.
      testTimeout: 60_000,
      hookTimeout: 30_000,
    },
  },
  {
    test: {
      name: 'bench',
      root: 'apps/bench',
      include: ['test/**/*.test.ts'],
      environment: 'node',
      testTimeout: 30_000,
    },
  },
  {
    test: {
      name: 'packaging',
      root: 'test/packaging',
      include: ['*.test.ts'],
      environment: 'node',
      // npm pack of three packages, an offline npm install, two tsc runs and a real call.
      testTimeout: 120_000,
      hookTimeout: 300_000,
    },
  },
];

export default projects;
