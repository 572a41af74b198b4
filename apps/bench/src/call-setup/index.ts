import type { Benchmark } from '../types.js';

export const benchmark: Benchmark = {
  name: 'callSetup',
  run() {
    return Promise.reject(new Error('callSetup: not written yet'));
  },
};
