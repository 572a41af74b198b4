import type { Benchmark } from '../types.js';

export const benchmark: Benchmark = {
  name: 'signaling',
  run() {
    return Promise.reject(new Error('signaling: not written yet'));
  },
};
