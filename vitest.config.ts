import { defineConfig } from 'vitest/config';
import { projects } from './vitest.workspace.js';

export default defineConfig({
  test: {
    projects,
    // Property tests and real servers are CPU-bound; two workers fit a 2-core machine.
    maxWorkers: 2,
  },
});
