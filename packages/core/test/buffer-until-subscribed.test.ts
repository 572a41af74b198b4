import { describe, expect, it } from 'vitest';
import { BufferUntilSubscribed } from '../src/rx.js';

describe('BufferUntilSubscribed', () => {
  it('holds values pushed before the first subscriber and gives them to it, then is hot', () => {
    const stream = new BufferUntilSubscribed<number>();
    stream.next(1);
    stream.next(2);
    const first: number[] = [];
    const second: number[] = [];
    stream.observable.subscribe((value) => first.push(value));
    stream.observable.subscribe((value) => second.push(value));
    stream.next(3);
    expect(first).toEqual([1, 2, 3]);
    expect(second).toEqual([3]);
  });

  it('keeps the order when the first subscriber pushes a value while the held ones are replayed', () => {
    // A port's event handler that makes the port raise another event (e.g. a state read that
    // reports a change) must not see that event before the ones raised earlier.
    const stream = new BufferUntilSubscribed<string>();
    stream.next('held 1');
    stream.next('held 2');
    const seen: string[] = [];
    stream.observable.subscribe((value) => {
      seen.push(value);
      if (value === 'held 1') stream.next('pushed while replaying');
    });
    stream.next('after');
    expect(seen).toEqual(['held 1', 'held 2', 'pushed while replaying', 'after']);
  });

  it('completed before anyone subscribed: the first subscriber still gets the held values, then completes', () => {
    const stream = new BufferUntilSubscribed<number>();
    stream.next(1);
    stream.complete();
    stream.next(2);
    const seen: unknown[] = [];
    stream.observable.subscribe({ next: (value) => seen.push(value), complete: () => seen.push('complete') });
    expect(seen).toEqual([1, 'complete']);
    const late: unknown[] = [];
    stream.observable.subscribe({ next: (value) => late.push(value), complete: () => late.push('complete') });
    expect(late).toEqual(['complete']);
  });

  it('completes live subscribers, and nothing is delivered after complete or after unsubscribe', () => {
    const stream = new BufferUntilSubscribed<number>();
    const seen: unknown[] = [];
    const gone: number[] = [];
    stream.observable.subscribe({ next: (value) => seen.push(value), complete: () => seen.push('complete') });
    const subscription = stream.observable.subscribe((value) => gone.push(value));
    stream.next(1);
    subscription.unsubscribe();
    stream.next(2);
    stream.complete();
    stream.next(3);
    expect(seen).toEqual([1, 2, 'complete']);
    expect(gone).toEqual([1]);
  });
});
