// Join, resume, restore and leave: how a connection becomes a member of a room and how a member
// stops being one (docs of the wire protocol: src/protocol.ts, `join`, `welcome`, `peer-left`).
//
// - A fresh join gets a new id: auth (join token), then name uniqueness and room size, atomically
//   in the broker.
// - A resume, within the grace period on the process that holds the session, takes the session
//   over: same id, held frames, the room hears nothing.
// - A restore verifies a resume token another process (or an earlier run) signed with the same
//   resume secret and gives the peer its id back; the room is told `peer-joined`. If the id is
//   still a member held by another server or node (its node died, or its old socket lingers
//   there), the restore takes it over (`JoinOptions.takeover`): that session ends silently and
//   hands its held frames over, and the room, never told `peer-left`, hears nothing. It never grants
//   more than a join would: with an auth secret it is refused once the join token that admitted
//   the peer has expired, it is refused for a session that ended by `leave` or a clean close
//   (revoked through the broker, so every process sees it), and each token restores once.
// - A session ends by `leave` or a clean close (1000/1001): the room is told `peer-left` at once
//   and the session is revoked. An abnormal close (1006, heartbeat, slow consumer, abuse) keeps it
//   in grace for `resumeGraceMs`, holding frames for it, bounded; then `peer-left`.

import { CLOSE_CODES, type IceServerConfig, type JoinFrame, type PeerInfo } from '../protocol.js';
import { joinTokenExpiresAt, verifyJoinToken } from './auth.js';
import { wireFrameText } from './broker.js';
import type { BrokerJoinResult, JoinOptions, WireFrame } from './broker.js';
import type { Connection, ConnectionState } from './connection.js';
import { when, type ServerContext } from './context.js';
import { randomId } from './options.js';
import { createResumeToken, verifyResumeToken, type ResumeClaims } from './resume-token.js';
import { Session, type EndReason, type HeldFrame } from './session.js';
import { errorMessage } from './log.js';
import { peerLeftFrame, undeliverableFrame } from './notices.js';

/** Frames received while an asynchronous join is under way, kept and handled after it. */
const JOIN_BACKLOG_LIMIT = 256;
/** WebSocket close codes (RFC 6455 §7.4.1) that end a session at once: the client meant to go. */
const CLEAN_CLOSE_CODES: ReadonlySet<number> = new Set([CLOSE_CODES.normal, CLOSE_CODES.goingAway]);

/** Join, resume, restore and leave, for the frame handlers and the connection lifecycle. */
export interface Sessions {
  /** Handles a `join` frame. */
  readonly join: (conn: Connection, frame: JoinFrame) => void;
  /** Handles a `leave` frame. */
  readonly leave: (conn: Connection) => void;
  /** The socket of `conn` closed with `code` (sent by the client, or 1006). */
  readonly socketClosed: (conn: Connection, code: number) => void;
  /** The server starts closing `conn` (abuse, slow consumer, drain): its session leaves the socket now. */
  readonly serverClosing: (conn: Connection) => void;
  /** Queues a frame that arrived while `conn` is joining; false when the backlog is full. */
  readonly addToBacklog: (conn: Connection, frame: Buffer) => boolean;
  /** Answers `refresh-ice-servers`. */
  readonly refreshIceServers: (conn: Connection) => void;
  /** Ends every session (shutdown). */
  readonly endAll: () => void;
  /** Sends a frame to a session (or holds it); `from` is the sender of a signal. */
  readonly deliver: (session: Session, frame: WireFrame, from: string | undefined) => void;
}

/** The ICE servers of a `welcome` or `ice-servers` frame, with the TURN expiry when there is one. */
function iceServersFields(ctx: ServerContext, id: string): { iceServers: IceServerConfig[]; iceServersExpireAt?: number } {
  const { iceServers, expiresAtMs } = ctx.iceServers.forPeer(id, ctx.now());
  return expiresAtMs === undefined ? { iceServers } : { iceServers, iceServersExpireAt: expiresAtMs };
}

/** Creates join, resume, restore and leave over `ctx`; `handleFrame` handles a backlogged frame. */
export function createSessions(ctx: ServerContext, handleFrame: (conn: Connection, bytes: Buffer) => void): Sessions {
  const { options, broker, outbox, log } = ctx;

  function brokerFailed(operation: string, error: unknown): void {
    log({ level: 'error', event: 'broker-error', operation, message: errorMessage(error) });
  }

  function countRoom(room: string, delta: number): void {
    const count = (ctx.localRooms.get(room) ?? 0) + delta;
    if (count <= 0) ctx.localRooms.delete(room);
    else ctx.localRooms.set(room, count);
  }

  /** The key under which a peer's end is revoked in the broker. */
  const peerKey = (room: string, id: string): string => `peer:${room}:${id}`;

  // ---- delivering and holding ----

  function undeliverable(session: Session, from: string | undefined, why: string): void {
    log({ level: 'warn', event: 'undeliverable', peer: session.id, room: session.room, from, why });
    if (from === undefined) return; // room notices (peer-joined/left): the peer learns the room on its next welcome
    when(broker.publish(session.room, from, undeliverableFrame(session.id, why)), () => undefined, (e) => brokerFailed('publish', e));
  }

  function hold(session: Session, state: { held: HeldFrame[]; heldBytes: number }, frame: WireFrame, from: string | undefined): void {
    const bytes = Buffer.byteLength(frame);
    if (state.held.length >= options.resumeQueueLimit || state.heldBytes + bytes > options.maxHeldBytesPerPeer) {
      undeliverable(session, from, 'the peer is reconnecting and too much is held for it');
      return;
    }
    if (!ctx.heldBudget.take(bytes)) {
      undeliverable(session, from, 'the peer is reconnecting and the server holds too much for reconnecting peers');
      return;
    }
    // Held as text: a relayed Buffer may be a slice of a shared pool, which holding would keep alive.
    state.held.push({ frame: wireFrameText(frame), from });
    state.heldBytes += bytes;
  }

  function deliver(session: Session, frame: WireFrame, from: string | undefined): void {
    const state = session.state;
    switch (state.kind) {
      case 'connected':
        // Not sent because the socket was just closed as a slow consumer: the session is in
        // grace now, so the frame is held (or its sender told).
        if (!outbox.send(state.conn, frame) && session.state.kind !== 'connected') deliver(session, frame, from);
        return;
      case 'resuming':
        // To the socket being replaced while it still takes frames; otherwise for the resume.
        if (state.previous === undefined || !outbox.send(state.previous, frame)) hold(session, state, frame, from);
        return;
      case 'in-grace':
        hold(session, state, frame, from);
        return;
      case 'ended':
        undeliverable(session, from, 'the peer has left');
        return;
    }
  }

  /** Takes the held frames out of a session's grace state, giving their bytes back to the budget. */
  function takeHeld(state: { held: HeldFrame[]; heldBytes: number }): HeldFrame[] {
    ctx.heldBudget.give(state.heldBytes);
    const held = state.held;
    state.held = [];
    state.heldBytes = 0;
    return held;
  }

  // ---- ending ----

  /**
   * Ends a session here: out of this server's tables (its token, its room count, its grace timer
   * and client slot); answers the frames it held, whose senders the caller tells or hands on.
   */
  function detach(session: Session): HeldFrame[] {
    const state = session.state;
    session.state = { kind: 'ended' };
    let held: HeldFrame[] = [];
    if (state.kind === 'in-grace' || state.kind === 'resuming') {
      if (state.kind === 'in-grace') clearTimeout(state.timer);
      if (state.ip !== undefined) ctx.clientSlots.release(state.ip);
      held = takeHeld(state);
    }
    ctx.sessionsByToken.delete(session.resumeToken);
    countRoom(session.room, -1);
    return held;
  }

  /** Takes a peer out of its room for good and tells the others `peer-left`. */
  function end(session: Session, why: EndReason): void {
    if (session.state.kind === 'ended') return;
    const told = new Set<string>();
    for (const { from } of detach(session)) {
      if (from !== undefined && !told.has(from)) {
        told.add(from);
        undeliverable(session, from, 'the peer did not come back');
      }
    }
    log({ level: 'info', event: 'peer-left', peer: session.id, room: session.room, why });
    if (why === 'leave' || why === 'clean-close') {
      // Every token of this session was issued by now: none may restore it, on any process.
      const now = ctx.now();
      when(broker.revoke(peerKey(session.room, session.id), now + options.resumeTokenTtlSeconds * 1000, now), () => undefined, (e) => brokerFailed('revoke', e));
    }
    when(
      broker.leave(session.room, session.id, session.sink),
      // Not removed: another join took the id over meanwhile, and the room keeps that member.
      (removed) => removed && when(broker.broadcast(session.room, peerLeftFrame(session.id), session.id, 'left'), () => undefined, (e) => brokerFailed('broadcast', e)),
      (e) => brokerFailed('leave', e),
    );
  }

  /**
   * A restore elsewhere took this session's id over (`JoinOptions.onTakenOver`): it ends without
   * `peer-left` or revocation (the peer lives on, on the other side), a socket still bound to it
   * is closed with 4000 (replaced), and the frames held for it are handed to the new owner.
   */
  function takenOver(session: Session): readonly HeldFrame[] {
    const state = session.state;
    if (state.kind === 'ended') return [];
    const replaced: Connection[] = [];
    if (state.kind === 'connected') replaced.push(state.conn);
    // A resume here that raced the restore lost: its connection joins afresh when the broker answers.
    else if (state.kind === 'resuming' && state.previous !== undefined) replaced.push(state.previous);
    const held = detach(session);
    for (const conn of replaced) {
      conn.state = { kind: 'awaiting-join' };
      outbox.close(conn, CLOSE_CODES.replaced, 'replaced: the peer resumed on another server');
    }
    log({ level: 'info', event: 'peer-taken-over', peer: session.id, room: session.room, held: held.length });
    return held;
  }

  /** How a session's membership is joined: its frames go to `deliver`, a takeover ends it silently. */
  function joinOptions(session: Session, takeover: boolean): JoinOptions {
    session.sink = (f, from) => deliver(session, f, from);
    return { takeover, onTakenOver: () => takenOver(session) };
  }

  /** The socket of a session went away without meaning to: keep the session for a resume. */
  function startGrace(session: Session, ip: string, held: HeldFrame[] = [], heldBytes = 0): void {
    // In-grace sessions count toward their client's cap: a client cannot park unbounded sessions.
    ctx.clientSlots.add(ip);
    if (options.resumeGraceMs === 0) {
      session.state = { kind: 'in-grace', held, heldBytes, timer: undefined, ip };
      end(session, 'disconnected');
      return;
    }
    // While draining, sessions wait (no timer) until every socket is closed, then end together
    // (shutdown.ts): nobody is told `peer-left` by a server that is only restarting.
    const timer = ctx.phase === 'draining' ? undefined : setTimeout(() => end(session, 'resume-grace-expired'), options.resumeGraceMs);
    timer?.unref();
    session.state = { kind: 'in-grace', held, heldBytes, timer, ip };
  }

  function socketClosed(conn: Connection, code: number): void {
    const state = conn.state;
    conn.state = { kind: 'closed' };
    if (state.kind !== 'joined') return;
    const session = state.session;
    if (session.state.kind === 'resuming' && session.state.previous === conn) {
      session.state.previous = undefined;
      return;
    }
    if (session.conn !== conn) return;
    if (CLEAN_CLOSE_CODES.has(code)) end(session, 'clean-close');
    else startGrace(session, conn.ip);
  }

  function serverClosing(conn: Connection): void {
    const session = conn.session;
    if (session === undefined) return;
    conn.state = { kind: 'awaiting-join' }; // the caller makes it `closing` next
    if (session.state.kind === 'resuming' && session.state.previous === conn) session.state.previous = undefined;
    else if (session.conn === conn) startGrace(session, conn.ip);
  }

  // ---- welcome ----

  function issueResumeToken(session: { room: string; name: string; id: string; joinExpiresAt: number }): string {
    return createResumeToken(options.resumeSecret, { issuer: ctx.issuer, room: session.room, name: session.name, id: session.id, joinExpiresAt: session.joinExpiresAt }, ctx.now());
  }

  /** Binds a session to a connection, sends `welcome` and whatever was held meanwhile. */
  function welcome(conn: Connection, session: Session, peers: readonly PeerInfo[], held: readonly HeldFrame[], how: 'joined' | 'resumed' | 'restored'): void {
    conn.state = { kind: 'joined', session };
    session.state = { kind: 'connected', conn };
    const others = peers.filter((p) => p.id !== session.id).map((p) => ({ id: p.id, name: p.name }));
    outbox.send(conn, JSON.stringify({ type: 'welcome', id: session.id, resume: session.resumeToken, peers: others, ...iceServersFields(ctx, session.id) }));
    for (const { frame } of held) outbox.send(conn, frame);
    log({ level: 'info', event: 'join', conn: conn.cid, peer: session.id, room: session.room, name: session.name, resumed: how === 'resumed', restored: how === 'restored', held: held.length });
  }

  function drainBacklog(conn: Connection, backlog: readonly Buffer[]): void {
    for (let i = 0; i < backlog.length; i += 1) {
      if (conn.state.kind === 'joining') {
        // Another asynchronous join started: keep the rest for after it.
        conn.state.backlog.push(...backlog.slice(i));
        return;
      }
      if (conn.isClosingOrClosed) return;
      handleFrame(conn, backlog[i]!);
    }
  }

  /** Leaves `joining` for `awaiting-join` (unless closed meanwhile); returns the backlog to handle. */
  function stopJoining(conn: Connection): readonly Buffer[] {
    const state = conn.state;
    if (state.kind !== 'joining') return [];
    conn.state = { kind: 'awaiting-join' };
    return state.backlog;
  }

  /** The state now (a call, so that TypeScript does not keep a narrowing across a handler that changed it). */
  const stateOf = (conn: Connection): ConnectionState => conn.state;

  /** A fresh join after another attempt ended, keeping the frames that waited for that one. */
  function joinAgain(conn: Connection, frame: JoinFrame, refusedResume: string | undefined, backlog: readonly Buffer[]): void {
    if (conn.state.kind !== 'awaiting-join') return;
    freshJoin(conn, frame, refusedResume);
    const state = stateOf(conn);
    if (state.kind === 'joining') state.backlog.push(...backlog);
    else drainBacklog(conn, backlog);
  }

  function startJoining(conn: Connection): void {
    conn.state = { kind: 'joining', backlog: [] };
  }

  function refuse(conn: Connection, message: string): void {
    outbox.sendError(conn, 'unauthorized', message);
    outbox.close(conn, CLOSE_CODES.unauthorized, 'unauthorized');
  }

  // ---- join ----

  function join(conn: Connection, frame: JoinFrame): void {
    if (conn.state.kind !== 'awaiting-join') {
      outbox.sendError(conn, 'already-joined', 'this connection has already joined a room');
      return;
    }
    if (ctx.phase === 'draining') {
      outbox.sendError(conn, 'draining', 'the server is shutting down: reconnect elsewhere');
      return;
    }
    if (frame.resume !== undefined) {
      const session = ctx.sessionsByToken.get(frame.resume);
      if (session === undefined) {
        restoreOrJoin(conn, frame, frame.resume);
        return;
      }
      const kind = session.state.kind;
      if (kind !== 'resuming' && kind !== 'ended' && session.room === frame.room && session.name === frame.name) {
        resume(conn, session, frame);
        return;
      }
    }
    // No resume token, or one for another room or name, or whose resume is under way: wire
    // protocol v1 makes that a normal join with a fresh id (under the rules of any join).
    freshJoin(conn, frame, undefined);
  }

  /** A join under a new id: auth, then name uniqueness and room size (atomically, in the broker). */
  function freshJoin(conn: Connection, frame: JoinFrame, refusedResume: string | undefined): void {
    let joinExpiresAt = 0;
    if (options.authSecret !== undefined) {
      const check = verifyJoinToken(options.authSecret, frame.token, frame.room, frame.name, ctx.now());
      if (check !== 'ok') {
        const token = check === 'missing' ? 'a join token is required' : `join token refused (${check})`;
        refuse(conn, refusedResume === undefined ? token : `resume refused (${refusedResume}) and ${token}`);
        return;
      }
      joinExpiresAt = joinTokenExpiresAt(frame.token!) ?? 0;
    }
    const id = randomId(16);
    const session = new Session(id, frame.room, frame.name, '', conn, joinExpiresAt);
    session.resumeToken = issueResumeToken(session);
    startJoining(conn);
    const how = joinOptions(session, false);
    when(
      broker.join(frame.room, { id, name: frame.name }, options.maxPeersPerRoom, session.sink, how),
      (result) => {
        if (!result.ok && result.reason === 'id-taken') {
          // 16 random bytes collided: practically never; try again under a new id.
          joinAgain(conn, frame, refusedResume, stopJoining(conn));
          return;
        }
        finishJoin(conn, session, result, 'joined');
      },
      (error) => joinFailed(conn, error),
    );
  }

  function joinFailed(conn: Connection, error: unknown): void {
    brokerFailed('join', error);
    stopJoining(conn);
    outbox.close(conn, CLOSE_CODES.internalError, 'join failed');
  }

  function finishJoin(conn: Connection, session: Session, result: BrokerJoinResult, how: 'joined' | 'restored'): void {
    const backlog = stopJoining(conn);
    if (!result.ok) {
      const reason = result.reason === 'id-taken' ? 'name-taken' : result.reason;
      if (!conn.isClosingOrClosed) {
        outbox.sendError(conn, reason, reason === 'room-full' ? `room is full (${options.maxPeersPerRoom} peers)` : 'name is taken in this room');
        drainBacklog(conn, backlog);
      }
      return;
    }
    ctx.sessionsByToken.set(session.resumeToken, session);
    countRoom(session.room, 1);
    if (conn.state.kind !== 'awaiting-join') {
      end(session, 'disconnected-while-joining');
      return;
    }
    welcome(conn, session, result.peers, result.held ?? [], how);
    if (result.takenOver !== true) {
      // A member taken over was never reported gone: the room already knows this id.
      const joinedFrame = JSON.stringify({ type: 'peer-joined', peer: { id: session.id, name: session.name } });
      when(broker.broadcast(session.room, joinedFrame, session.id, 'joined'), () => undefined, (e) => brokerFailed('broadcast', e));
    }
    drainBacklog(conn, backlog);
  }

  // ---- resume (same process, within the grace period) ----

  /**
   * Takes a session over from `conn`. Nothing changes for the session until the broker has
   * answered (its socket, if it still has one, keeps it; its token stays valid): a resume that
   * cannot complete leaves it as it was.
   */
  function resume(conn: Connection, session: Session, frame: JoinFrame): void {
    const state = session.state;
    if (state.kind === 'ended' || state.kind === 'resuming') return;
    // The resume came within the grace period: the session waits for it, however slow the broker.
    if (state.kind === 'in-grace') {
      clearTimeout(state.timer);
      session.state = { kind: 'resuming', conn, held: state.held, heldBytes: state.heldBytes, ip: state.ip, previous: undefined };
    } else {
      session.state = { kind: 'resuming', conn, held: [], heldBytes: 0, ip: undefined, previous: state.conn };
    }
    startJoining(conn);
    when(
      broker.members(session.room),
      (peers) => finishResume(conn, session, frame, peers),
      (error) => {
        brokerFailed('members', error);
        stopJoining(conn);
        abandonResume(session);
        outbox.close(conn, CLOSE_CODES.internalError, 'resume failed');
      },
    );
  }

  /** A resume that did not complete: the session goes on as before (bound, or in grace again). */
  function abandonResume(session: Session): void {
    const state = session.state;
    if (state.kind !== 'resuming') return;
    if (state.previous !== undefined) {
      session.state = { kind: 'connected', conn: state.previous };
      return;
    }
    if (state.ip !== undefined) ctx.clientSlots.release(state.ip);
    startGrace(session, state.ip ?? state.conn.ip, state.held, state.heldBytes);
  }

  function finishResume(conn: Connection, session: Session, frame: JoinFrame, peers: readonly PeerInfo[]): void {
    const backlog = stopJoining(conn);
    const state = session.state;
    if (state.kind !== 'resuming') {
      // It ended meanwhile (the server is shutting down): the token is unknown now, and an
      // unknown token is a join under the rules of any join.
      joinAgain(conn, frame, 'the session ended', backlog);
      return;
    }
    if (conn.state.kind !== 'awaiting-join') {
      abandonResume(session);
      return;
    }
    if (state.previous !== undefined) {
      // Still bound to a socket the client has given up on (our heartbeat has not noticed yet).
      // This socket is being replaced by the resumed one (4000; the other place is `takenOver`).
      const previous = state.previous;
      previous.state = { kind: 'awaiting-join' };
      outbox.close(previous, CLOSE_CODES.replaced, 'replaced by a resumed connection');
    }
    if (state.ip !== undefined) ctx.clientSlots.release(state.ip);
    const held = takeHeld(state);
    // Resume tokens are single-use: the welcome carries a fresh one.
    ctx.sessionsByToken.delete(session.resumeToken);
    session.resumeToken = issueResumeToken(session);
    ctx.sessionsByToken.set(session.resumeToken, session);
    welcome(conn, session, peers, held, 'resumed');
    drainBacklog(conn, backlog);
  }

  // ---- restore (a token another process, or an earlier run, signed) ----

  /**
   * Why a resume token that this process does not know cannot restore its id, before asking the
   * broker (undefined: it can, if the broker agrees). This process's own tokens are valid only
   * while their session lives.
   */
  function localRefusal(frame: JoinFrame, token: string): { why: string; claims?: ResumeClaims } {
    if (options.resumeGraceMs === 0) return { why: 'resume-off' };
    const check = verifyResumeToken(options.resumeSecret, token, ctx.now(), options.resumeTokenTtlSeconds);
    if (!check.ok) return { why: check.reason };
    const claims = check.claims;
    if (claims.issuer === ctx.issuer) return { why: 'used-up' };
    if (claims.room !== frame.room || claims.name !== frame.name) return { why: 'other-room-or-name' };
    // A resume never grants more than a join: not past the join token that admitted the peer.
    if (options.authSecret !== undefined && claims.joinExpiresAt * 1000 <= ctx.now()) return { why: 'join-token-expired' };
    return { why: '', claims };
  }

  function restoreOrJoin(conn: Connection, frame: JoinFrame, token: string): void {
    const { why, claims } = localRefusal(frame, token);
    if (claims === undefined) {
      // Never the token itself in a log: it is a credential.
      log({ level: 'info', event: 'resume-token-unusable', conn: conn.cid, room: frame.room, why });
      freshJoin(conn, frame, why);
      return;
    }
    startJoining(conn);
    const now = ctx.now();
    when(
      broker.isRevoked(peerKey(claims.room, claims.id), now),
      (revoked) => {
        if (revoked) {
          refusedRestore(conn, frame, 'revoked: the peer left');
          return;
        }
        // Each token restores once, on whichever process sees it first.
        const until = (claims.issuedAt + options.resumeTokenTtlSeconds) * 1000;
        when(
          broker.revoke(`nonce:${claims.nonce}`, until, now),
          (first) => (first ? restore(conn, frame, claims) : refusedRestore(conn, frame, 'used-up')),
          (error) => joinFailed(conn, error),
        );
      },
      (error) => joinFailed(conn, error),
    );
  }

  /** A verified token that may not restore: a join under the rules of any join (a join token with auth). */
  function refusedRestore(conn: Connection, frame: JoinFrame, why: string): void {
    log({ level: 'info', event: 'resume-token-unusable', conn: conn.cid, room: frame.room, why });
    joinAgain(conn, frame, why, stopJoining(conn));
  }

  /**
   * A join that restores the peer id of a verified resume token. If the id is no member, the room
   * is told `peer-joined` as for any join. If another server or node holds it, the restore takes
   * it over (the room hears nothing). If this server holds it (a live or in-grace session that
   * its current token resumes), or the name is held by another member, it is a fresh join (with
   * its rules, a join token included).
   */
  function restore(conn: Connection, frame: JoinFrame, claims: ResumeClaims): void {
    for (const other of ctx.sessionsByToken.values()) {
      if (other.id === claims.id && other.room === claims.room) {
        refusedRestore(conn, frame, 'id-taken');
        return;
      }
    }
    const session = new Session(claims.id, frame.room, frame.name, '', conn, claims.joinExpiresAt);
    session.resumeToken = issueResumeToken(session);
    const how = joinOptions(session, true);
    when(
      broker.join(frame.room, { id: session.id, name: session.name }, options.maxPeersPerRoom, session.sink, how),
      (result) => {
        if (!result.ok && result.reason !== 'room-full') {
          // The id or the name is in use: not a restore. (A full room is full for a fresh join too.)
          refusedRestore(conn, frame, result.reason);
          return;
        }
        finishJoin(conn, session, result, 'restored');
      },
      (error) => joinFailed(conn, error),
    );
  }

  // ---- leave, refresh, backlog ----

  function leave(conn: Connection): void {
    const state = conn.state;
    if (state.kind !== 'joined') {
      outbox.sendError(conn, 'not-joined', state.kind === 'joining' ? 'a join is under way' : 'join a room first');
      return;
    }
    conn.state = { kind: 'awaiting-join' };
    end(state.session, 'leave');
  }

  function refreshIceServers(conn: Connection): void {
    const session = conn.session;
    if (session === undefined) {
      outbox.sendError(conn, 'not-joined', 'join a room before asking for ICE servers');
      return;
    }
    outbox.send(conn, JSON.stringify({ type: 'ice-servers', ...iceServersFields(ctx, session.id) }));
  }

  function addToBacklog(conn: Connection, frame: Buffer): boolean {
    if (conn.state.kind !== 'joining' || conn.state.backlog.length >= JOIN_BACKLOG_LIMIT) return false;
    conn.state.backlog.push(frame);
    return true;
  }

  function endAll(): void {
    for (const session of [...ctx.sessionsByToken.values()]) end(session, 'shutdown');
  }

  return { join, leave, socketClosed, serverClosing, addToBacklog, refreshIceServers, endAll, deliver };
}
