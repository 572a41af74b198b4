import type { Benchmark } from '../types.js';

export const benchmark: Benchmark = {
  name: 'dataChannel',
  run() {
    return Promise.reject(new Error('dataChannel: not written yet'));
  },
};
