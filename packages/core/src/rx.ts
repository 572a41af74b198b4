import { Observable, Subject, distinctUntilChanged, map } from 'rxjs';
import type { ActorRef, AnyActorRef, EventObject, Snapshot, SnapshotFrom } from 'xstate';

/**
 * A subject that holds what is pushed before its first subscriber and delivers it to that
 * subscriber, then behaves as a plain hot subject. Events raised while a port or actor starts
 * (before the app had a chance to subscribe) are therefore never lost. Values pushed while the
 * held ones are replayed (a subscriber reacting to one of them) join the end of the replay, so
 * every subscriber sees the order in which values were pushed.
 */
export class BufferUntilSubscribed<T> {
  private buffer: T[] | null = [];
  /** Made at the first subscription: an idle peer or port holds none (issue 14, memory). */
  private subject: Subject<T> | null = null;
  private completed = false;

  readonly observable = new Observable<T>((subscriber) => {
    const held = this.buffer;
    if (held) {
      while (held.length > 0 && !subscriber.closed) subscriber.next(held.shift()!);
      this.buffer = null;
    }
    if (this.completed) {
      subscriber.complete();
      return undefined;
    }
    this.subject ??= new Subject<T>();
    return this.subject.subscribe(subscriber);
  });

  next(value: T): void {
    if (this.completed) return;
    if (this.buffer) this.buffer.push(value);
    else this.subject?.next(value);
  }

  complete(): void {
    if (this.completed) return;
    this.completed = true;
    this.subject?.complete();
  }
}

/** The actor's snapshots as an Observable (xstate actors are interop observables). */
export function snapshots$<TActor extends AnyActorRef>(actor: TActor): Observable<SnapshotFrom<TActor>> {
  return new Observable<SnapshotFrom<TActor>>((subscriber) => {
    subscriber.next(actor.getSnapshot() as SnapshotFrom<TActor>);
    const subscription = actor.subscribe({
      next: (snapshot: SnapshotFrom<TActor>) => subscriber.next(snapshot),
      error: (error: unknown) => subscriber.error(error),
      complete: () => subscriber.complete(),
    });
    return () => subscription.unsubscribe();
  }).pipe(distinctUntilChanged());
}

/** One slice of the actor's snapshots, emitted when it changes. */
export function select$<TActor extends AnyActorRef, T>(
  actor: TActor,
  selector: (snapshot: SnapshotFrom<TActor>) => T,
  equal: (a: T, b: T) => boolean = Object.is,
): Observable<T> {
  return snapshots$(actor).pipe(map(selector), distinctUntilChanged(equal));
}

/** The events an actor emits (xstate `emit`), all of them or those of one type. */
export function emitted$<TEmitted extends EventObject>(
  actor: ActorRef<Snapshot<unknown>, EventObject, TEmitted>,
  type: TEmitted['type'] | '*' = '*',
): Observable<TEmitted> {
  return new Observable<TEmitted>((subscriber) => {
    const subscription = actor.on(type, (event) => subscriber.next(event));
    return () => subscription.unsubscribe();
  });
}
