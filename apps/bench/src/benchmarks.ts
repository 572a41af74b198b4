import { benchmark as callSetup } from './call-setup/index.js';
import { benchmark as dataChannel } from './data-channel/index.js';
import { benchmark as machines } from './machines/index.js';
import { benchmark as mesh } from './mesh/index.js';
import { benchmark as signaling } from './signaling/index.js';
import type { BenchName, Benchmark } from './types.js';

export const BENCHMARKS: Readonly<Record<BenchName, Benchmark>> = { machines, signaling, dataChannel, callSetup, mesh };
