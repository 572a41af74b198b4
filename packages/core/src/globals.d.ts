// Timers and microtasks exist in every host core runs in (browsers, workers, Node), but they
// are not part of the ECMAScript library. Declaring just these keeps DOM and Node types out.
declare function setTimeout(handler: () => void, timeout?: number): unknown;
declare function clearTimeout(handle: unknown): void;
declare function queueMicrotask(callback: () => void): void;
