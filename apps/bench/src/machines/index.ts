import type { Benchmark } from '../types.js';

export const benchmark: Benchmark = {
  name: 'machines',
  run() {
    return Promise.reject(new Error('machines: not written yet'));
  },
};
